namespace MLExtensions.Distillation;

/// <summary>What a distillation run did, for the log and for comparing teacher and student.</summary>
/// <param name="TeacherOutputs">What served as the teacher's logits (its network's raw outputs, or log-probabilities of its scores).</param>
/// <param name="RowsScored">Training rows the teacher scored (once).</param>
/// <param name="TeacherParameters">Trainable values of the teacher's network; null when the teacher is not a network of this library.</param>
/// <param name="StudentParameters">Trainable values of the student's network.</param>
/// <param name="TeacherValidationAccuracy">The teacher's accuracy on the student's validation rows; null without validation.</param>
/// <param name="StudentValidationAccuracy">The kept student's accuracy on the same rows; null without validation.</param>
public sealed record DistillationReport(string TeacherOutputs, long RowsScored, long? TeacherParameters, long StudentParameters,
    double? TeacherValidationAccuracy, double? StudentValidationAccuracy)
{
    /// <summary>Student parameters as a fraction of the teacher's; null when the teacher's are unknown.</summary>
    public double? SizeRatio => TeacherParameters is > 0 ? (double)StudentParameters / TeacherParameters.Value : null;

    /// <inheritdoc />
    public override string ToString() =>
        $"teacher: {(TeacherParameters is long t ? $"{t:N0} parameters" : "not a network of this library")}, validation accuracy {Format(TeacherValidationAccuracy)}; " +
        $"student: {StudentParameters:N0} parameters{(SizeRatio is double r ? $" ({r:P1} of the teacher)" : "")}, validation accuracy {Format(StudentValidationAccuracy)}";

    private static string Format(double? value) => value is double v ? v.ToString("P2") : "n/a";
}
