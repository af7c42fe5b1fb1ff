using System.Collections.Concurrent;
using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Tabular;

/// <summary>The trainers behave like ML.NET's built-ins: schema, Evaluate, CrossValidate, PFI, pipelines, concurrency.</summary>
public class NeuralNetworkIntegrationTests
{
    private static NeuralNetworkOptions Quick() => new() { HiddenLayers = new[] { 16 }, Epochs = 20 };

    [Fact]
    public void MulticlassOutputSchemaMatchesSdcaMaximumEntropy()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var ours = ml.MulticlassClassification.Trainers.NeuralNetwork(Quick());
        var sdca = ml.MulticlassClassification.Trainers.SdcaMaximumEntropy();

        AssertSameShape(sdca.GetOutputSchema(ShapeOf(data.Schema)), ours.GetOutputSchema(ShapeOf(data.Schema)));
        AssertSameColumns(sdca.Fit(data).GetOutputSchema(data.Schema), ours.Fit(data).GetOutputSchema(data.Schema));
    }

    [Fact]
    public void BinaryAndRegressionOutputSchemasMatchBuiltIns()
    {
        var ml = new MLContext(seed: 2);
        var wine = TabularData.LoadWine(ml);
        // CustomMapping's output Label (Boolean) hides the float Label.
        var binary = ml.Transforms.CustomMapping((WineRow r, BoolLabel b) => b.Label = r.Label == 0, "toBool").Fit(wine).Transform(wine);

        AssertSameColumns(ml.BinaryClassification.Trainers.SdcaLogisticRegression().Fit(binary).GetOutputSchema(binary.Schema),
            ml.BinaryClassification.Trainers.NeuralNetwork(Quick()).Fit(binary).GetOutputSchema(binary.Schema));
        AssertSameShape(ml.BinaryClassification.Trainers.SdcaLogisticRegression().GetOutputSchema(ShapeOf(binary.Schema)),
            ml.BinaryClassification.Trainers.NeuralNetwork(Quick()).GetOutputSchema(ShapeOf(binary.Schema)));
        AssertSameColumns(ml.Regression.Trainers.Sdca().Fit(wine).GetOutputSchema(wine.Schema),
            ml.Regression.Trainers.NeuralNetwork(Quick()).Fit(wine).GetOutputSchema(wine.Schema));
        AssertSameShape(ml.Regression.Trainers.Sdca().GetOutputSchema(ShapeOf(wine.Schema)),
            ml.Regression.Trainers.NeuralNetwork(Quick()).GetOutputSchema(ShapeOf(wine.Schema)));
    }

    [Fact]
    public void CrossValidateWorksForAllThreeTasks()
    {
        var ml = new MLContext(seed: 3);
        var wine = TabularData.LoadWine(ml);
        var multiclass = ml.MulticlassClassification.CrossValidate(wine,
            ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.NeuralNetwork(Quick())), numberOfFolds: 3);
        Assert.Equal(3, multiclass.Count);
        Assert.All(multiclass, f => Assert.True(f.Metrics.MicroAccuracy > 0.85, $"fold accuracy {f.Metrics.MicroAccuracy}"));
        Assert.All(multiclass, f => Assert.True(f.Metrics.LogLoss < 0.5, $"fold log-loss {f.Metrics.LogLoss}"));

        // Regression of the cultivar index: a harder target for a tiny network, so it gets more epochs.
        var regressionOptions = Quick();
        regressionOptions.Epochs = 80;
        var regression = ml.Regression.CrossValidate(wine, ml.Regression.Trainers.NeuralNetwork(regressionOptions), numberOfFolds: 3);
        Assert.All(regression, f => Assert.True(f.Metrics.RSquared > 0.8, $"fold R² {f.Metrics.RSquared}"));

        var binary = ml.Transforms.CustomMapping((WineRow r, BoolLabel b) => b.Label = r.Label == 0, "toBool").Fit(wine).Transform(wine);
        var binaryFolds = ml.BinaryClassification.CrossValidate(binary, ml.BinaryClassification.Trainers.NeuralNetwork(Quick()), numberOfFolds: 3);
        Assert.All(binaryFolds, f => Assert.True(f.Metrics.AreaUnderRocCurve > 0.95, $"fold AUC {f.Metrics.AreaUnderRocCurve}"));
    }

    [Fact]
    public void ConfusionMatrixUsesClassNamesFromTextLabels()
    {
        var ml = new MLContext(seed: 4);
        var named = ml.Transforms.CustomMapping((WineRow r, NamedLabel n) => n.Variety = new[] { "barolo", "grignolino", "barbera" }[(int)r.Label], "name")
            .Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var model = ml.Transforms.Conversion.MapValueToKey("Label", "Variety")
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(Quick()))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedVariety", "PredictedLabel")).Fit(named);
        var scored = model.Transform(named);

        var metrics = ml.MulticlassClassification.Evaluate(scored);
        var table = metrics.ConfusionMatrix.GetFormattedConfusionTable();
        Assert.Contains("barolo", table);
        Assert.Contains("grignolino", table);
        var predicted = scored.GetColumn<ReadOnlyMemory<char>>("PredictedVariety").Select(v => v.ToString()).ToList();
        Assert.Subset(new HashSet<string> { "barolo", "grignolino", "barbera" }, predicted.ToHashSet());
        Assert.True(metrics.MicroAccuracy > 0.9);
    }

    [Fact]
    public void ComposesWithNormalizeAndConcatenate()
    {
        var ml = new MLContext(seed: 5);
        var wine = TabularData.LoadWine(ml);
        var options = Quick();
        options.FeatureScaling = FeatureScaling.None; // the pipeline normalizes
        options.Epochs = 80;
        var pipeline = ml.Transforms.NormalizeMinMax("Normalized", "Features")
            .Append(ml.Transforms.Concatenate("Features", "Normalized"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(wine);
        var predictions = ml.Data.CreateEnumerable<FloatPrediction>(model.Transform(wine), false).ToList();
        var labels = wine.GetColumn<float>("Label").ToList();
        double accuracy = predictions.Zip(labels).Count(p => p.First.PredictedLabel == p.Second) / (double)labels.Count;
        Assert.True(accuracy > 0.9, $"training accuracy {accuracy}");
    }

    [Fact]
    public void PermutationFeatureImportanceRanksTheInformativeFeature()
    {
        // Label depends on feature 0 only; features 1 and 2 are noise.
        var ml = new MLContext(seed: 6);
        var random = new Random(6);
        var rows = Enumerable.Range(0, 600).Select(_ =>
        {
            var f = new[] { (float)random.NextDouble() * 2 - 1, (float)random.NextDouble(), (float)random.NextDouble() };
            return new ThreeFeatureRow { Features = f, Label = f[0] > 0 };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.BinaryClassification.Trainers.NeuralNetwork(Quick()).Fit(data);

        var importance = ml.BinaryClassification.PermutationFeatureImportance(model, data, permutationCount: 2);

        Assert.Equal(3, importance.Length);
        Assert.True(importance[0].AreaUnderRocCurve.Mean < -0.2, $"ΔAUC(f0) = {importance[0].AreaUnderRocCurve.Mean}");
        Assert.True(Math.Abs(importance[1].AreaUnderRocCurve.Mean) < 0.05);
        Assert.True(Math.Abs(importance[2].AreaUnderRocCurve.Mean) < 0.05);

        var multiclassData = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var multiclass = ml.MulticlassClassification.Trainers.NeuralNetwork(Quick()).Fit(multiclassData);
        var multiclassImportance = ml.MulticlassClassification.PermutationFeatureImportance(multiclass, multiclassData);
        Assert.Equal(13, multiclassImportance.Length);
        Assert.Contains(multiclassImportance, m => m.MicroAccuracy.Mean < -0.05);
    }

    [Fact]
    public void ScoresIdenticallyFromParallelCursorsAndPooledEnginesAsSerially()
    {
        var ml = new MLContext(seed: 7);
        var wine = TabularData.LoadWine(ml);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(wine).Transform(wine);
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(Quick()).Fit(keyed);
        var rows = ml.Data.CreateEnumerable<WineRow>(wine, false).Select(r => new FeaturesOnly { Features = r.Features }).ToList();

        // Serial reference, one engine.
        var single = ml.Model.CreatePredictionEngine<FeaturesOnly, MulticlassPrediction>(model);
        var expected = rows.Select(r => single.Predict(r)).Select(p => (p.PredictedLabel, Score: p.Score.ToArray())).ToList();

        // Parallel cursors (Evaluate and CreateEnumerable split the cursor over threads).
        var fromCursor = ml.Data.CreateEnumerable<MulticlassPrediction>(model.Transform(ml.Data.LoadFromEnumerable(rows)), false).ToList();
        for (int i = 0; i < rows.Count; i++)
            Assert.Equal(expected[i].Score, fromCursor[i].Score);

        // Many threads through a pool of engines, each row scored many times.
        var pool = new DefaultObjectPool<PredictionEngine<FeaturesOnly, MulticlassPrediction>>(new EnginePolicy(ml, model), 8);
        var mismatches = new ConcurrentBag<int>();
        Parallel.For(0, rows.Count * 20, new ParallelOptions { MaxDegreeOfParallelism = 8 }, k =>
        {
            int i = k % rows.Count;
            var engine = pool.Get();
            try
            {
                var p = engine.Predict(rows[i]);
                if (p.PredictedLabel != expected[i].PredictedLabel || !p.Score.SequenceEqual(expected[i].Score))
                    mismatches.Add(i);
            }
            finally
            {
                pool.Return(engine);
            }
        });
        Assert.Empty(mismatches);
    }

    private sealed class EnginePolicy : IPooledObjectPolicy<PredictionEngine<FeaturesOnly, MulticlassPrediction>>
    {
        private readonly MLContext _ml;
        private readonly ITransformer _model;

        public EnginePolicy(MLContext ml, ITransformer model)
        {
            _ml = ml;
            _model = model;
        }

        public PredictionEngine<FeaturesOnly, MulticlassPrediction> Create() => _ml.Model.CreatePredictionEngine<FeaturesOnly, MulticlassPrediction>(_model);

        public bool Return(PredictionEngine<FeaturesOnly, MulticlassPrediction> obj) => true;
    }

    // SchemaShape.Create is internal to ML.NET; estimators are normally asked for their output schema by Fit.
    private static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic, new[] { typeof(DataViewSchema) })!
            .Invoke(null, new object[] { schema })!;

    private static void AssertSameShape(SchemaShape expected, SchemaShape actual)
    {
        foreach (var column in expected)
        {
            var ours = Assert.Single(actual, c => c.Name == column.Name);
            Assert.Equal(column.Kind, ours.Kind);
            Assert.Equal(column.ItemType, ours.ItemType);
            Assert.Equal(column.IsKey, ours.IsKey);
            Assert.Equal(column.Annotations.Select(a => a.Name).OrderBy(n => n), ours.Annotations.Select(a => a.Name).OrderBy(n => n));
        }
    }

    private static void AssertSameColumns(DataViewSchema expected, DataViewSchema actual)
    {
        foreach (var name in new[] { "Score", "PredictedLabel", "Probability" })
        {
            var theirs = expected.GetColumnOrNull(name);
            var ours = actual.GetColumnOrNull(name);
            Assert.Equal(theirs.HasValue, ours.HasValue);
            if (theirs is null)
                continue;
            Assert.Equal(theirs.Value.Type, ours!.Value.Type);
            Assert.Equal(theirs.Value.Annotations.Schema.Select(c => (c.Name, c.Type.ToString())).OrderBy(x => x.Name),
                ours.Value.Annotations.Schema.Select(c => (c.Name, c.Type.ToString())).OrderBy(x => x.Name));
        }
    }
}

public sealed class BoolLabel
{
    public bool Label { get; set; }
}

public sealed class NamedLabel
{
    public string Variety { get; set; } = "";
}

public sealed class FloatPrediction
{
    public float PredictedLabel { get; set; }
}

public sealed class ThreeFeatureRow
{
    [VectorType(3)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public bool Label { get; set; }
}
