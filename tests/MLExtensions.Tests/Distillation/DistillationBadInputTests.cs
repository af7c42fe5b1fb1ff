using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Distillation;
using MLExtensions.Tabular;
using Xunit;

namespace MLExtensions.Tests.Distillation;

public class DistillationBadInputTests
{
    private static readonly MLContext Ml = new(seed: 1);

    private static DistillationOptions Options(Action<NeuralNetworkOptions>? student = null)
    {
        var s = new NeuralNetworkOptions { HiddenLayers = new[] { 4 }, Epochs = 1, ValidationFraction = 0, Seed = 1 };
        student?.Invoke(s);
        return new DistillationOptions { Student = s };
    }

    private static IDataView Points() => Ml.Data.LoadFromEnumerable(SyntheticTeachers.Points(60, 1, labelNoise: 0));

    public sealed class TwoClassRow
    {
        [VectorType(2)]
        public float[] Features { get; set; } = Array.Empty<float>();

        [KeyType(2)]
        public uint Label { get; set; }
    }

    public sealed class NamedRow
    {
        [VectorType(2)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = "";
    }

    [Fact]
    public void TeacherWithoutScoreColumn()
    {
        var data = Points();
        var notAClassifier = Ml.Transforms.NormalizeMinMax("Features").Fit(data);
        var e = Assert.Throws<ArgumentException>(() => Ml.MulticlassClassification.Trainers.Distill(notAClassifier, Options()).Fit(data));
        Assert.StartsWith("The teacher's output has no 'Score' column (its columns: 'Features', 'Label').", e.Message);
    }

    [Fact]
    public void ClassCountMismatch()
    {
        var points = Points();
        var teacher = SyntheticTeachers.PointTeacher(Ml, points); // three classes
        var twoClasses = Ml.Data.LoadFromEnumerable(SyntheticTeachers.Points(60, 2, labelNoise: 0)
            .Select(p => new TwoClassRow { Features = p.Features, Label = Math.Min(p.Label, 2u) }));
        var e = Assert.Throws<ArgumentException>(() => Ml.MulticlassClassification.Trainers.Distill(teacher, Options()).Fit(twoClasses));
        Assert.StartsWith("Class count mismatch: the teacher's 'Score' column has 3 values per row but the label column 'Label' has 2 classes.", e.Message);
    }

    [Fact]
    public void DifferentClassNamesAreRejectedAndReorderedNamesAreMatched()
    {
        NamedRow Row(float x, string label) => new() { Features = new[] { x, -x }, Label = label };
        var teacherData = Ml.Data.LoadFromEnumerable(Enumerable.Range(0, 60).Select(i => Row(i % 3, new[] { "a", "b", "c" }[i % 3])));
        var teacherKeys = Ml.Transforms.Conversion.MapValueToKey("Label").Fit(teacherData).Transform(teacherData);
        var teacher = Ml.MulticlassClassification.Trainers.SdcaMaximumEntropy().Fit(teacherKeys);

        var other = Ml.Data.LoadFromEnumerable(Enumerable.Range(0, 60).Select(i => Row(i % 3, new[] { "a", "b", "d" }[i % 3])));
        var otherKeys = Ml.Transforms.Conversion.MapValueToKey("Label").Fit(other).Transform(other);
        var e = Assert.Throws<ArgumentException>(() => Ml.MulticlassClassification.Trainers.Distill(teacher, Options()).Fit(otherKeys));
        Assert.StartsWith("The teacher's classes (a, b, c) in its 'Score' column differ from the classes of the label column 'Label' (a, b, d).", e.Message);

        // Same classes in another key order: accepted (the teacher's outputs are put in the student's order).
        var reordered = Ml.Data.LoadFromEnumerable(Enumerable.Range(0, 60).Select(i => Row(2 - i % 3, new[] { "c", "b", "a" }[i % 3])));
        var reorderedKeys = Ml.Transforms.Conversion.MapValueToKey("Label").Fit(reordered).Transform(reordered);
        var options = Options(s => { s.Epochs = 150; s.HiddenLayers = new[] { 16 }; s.Optimizer.LearningRate = 1e-2; });
        options.Alpha = 1;
        options.Temperature = 1; // teacher only: a wrong class order would teach the wrong classes
        var student = Ml.MulticlassClassification.Trainers.Distill(teacher, options).Fit(reorderedKeys);
        Assert.Equal(new[] { "c", "b", "a" }, student.ClassNames);
        double teacherAccuracy = Ml.MulticlassClassification.Evaluate(teacher.Transform(teacherKeys)).MicroAccuracy;
        double studentAccuracy = Ml.MulticlassClassification.Evaluate(student.Transform(reorderedKeys)).MicroAccuracy;
        Assert.True(studentAccuracy >= 0.95, $"student {studentAccuracy}, teacher {teacherAccuracy}");
    }

    [Theory]
    [InlineData(0.0, "Temperature must be a finite number > 0; found 0.")]
    [InlineData(-1.0, "Temperature must be a finite number > 0; found -1.")]
    public void TemperatureMustBePositive(double temperature, string message)
    {
        var data = Points();
        var options = Options();
        options.Temperature = temperature;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.MulticlassClassification.Trainers.Distill(SyntheticTeachers.PointTeacher(Ml, data), options));
        Assert.StartsWith(message, e.Message);
        Assert.Equal("Temperature", e.ParamName);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    public void AlphaMustBeInUnitInterval(double alpha)
    {
        var data = Points();
        var options = Options();
        options.Alpha = alpha;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.MulticlassClassification.Trainers.Distill(SyntheticTeachers.PointTeacher(Ml, data), options));
        Assert.StartsWith($"Alpha must be in [0, 1]; found {alpha}.", e.Message);
    }

    [Fact]
    public void StudentInputColumnMissing()
    {
        var data = Points();
        var options = Options(s => s.FeatureColumnName = "Pixels");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.MulticlassClassification.Trainers.Distill(SyntheticTeachers.PointTeacher(Ml, data), options).Fit(data));
        Assert.Contains("The feature column 'Pixels' was not found in the input schema.", e.Message);
    }

    [Fact]
    public void TeacherIsRequired()
    {
        // A null Student is not an error any more: the trainer chooses one (DefaultStudentTests).
        Assert.Throws<ArgumentNullException>(() => Ml.MulticlassClassification.Trainers.Distill(null!, Options()));
    }
}
