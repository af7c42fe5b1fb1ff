using Microsoft.ML.Runtime;
using MLExtensions.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>
/// Starts a transformer-encoder student from its teacher: every student tensor whose teacher counterpart (embeddings, and the
/// mapped layer for each student layer) has the same shape is copied. A narrower student with the same vocabulary gets the
/// teacher's word embeddings projected onto their top principal directions, which keeps the geometry of the vocabulary; a
/// student with low-rank word embeddings as wide as the teacher gets their best low-rank approximation.
/// </summary>
internal static class TeacherInitialization
{
    public static void Apply(TextClassifierNetwork teacher, TextClassifierNetwork student, int[]? layerMapping, IChannel channel)
    {
        var map = TextEncoderTeacher.LayerMap(layerMapping, student.Encoder.Config.Layers, teacher.Encoder.Config.Layers);
        var teacherState = teacher.state_dict();
        // Fixed buffers (e.g. sinusoidal position tables) are copied only when identical in shape, never projected.
        var trainable = new HashSet<string>(student.named_parameters().Select(p => p.name));
        int copied = 0, total = 0;
        var skipped = new List<string>();
        using var noGrad = torch.no_grad();
        var lowRank = LowRankWordEmbeddings(teacherState, student.state_dict(), channel);
        foreach (var (name, tensor) in student.state_dict())
        {
            if (name.StartsWith("classifier.", StringComparison.Ordinal))
                continue;
            total++;
            if (lowRank.Contains(name))
            {
                copied++;
                continue;
            }
            string source = TeacherName(name, map);
            if (teacherState.TryGetValue(source, out var t) && t.shape.SequenceEqual(tensor.shape))
            {
                tensor.copy_(t);
                copied++;
            }
            else if (trainable.Contains(name) && IsProjectableEmbedding(name, t, tensor))
            {
                tensor.copy_(ProjectEmbeddings(t!, (int)tensor.shape[1], tensor));
                copied++;
                channel.Info(MessageSensitivity.None, "Student {0}: the teacher's, projected from {1} to {2} dimensions (principal components).", name, t!.shape[1], tensor.shape[1]);
            }
            else
            {
                skipped.Add(name);
            }
        }
        channel.Info(MessageSensitivity.None, "Initialised {0} of {1} student encoder tensors from the teacher (student layer i ← teacher layer {2}); kept {3} at their random start.",
            copied, total, string.Join(", ", map.Skip(1)), skipped.Count);
    }

    /// <summary>
    /// A student with low-rank word embeddings (<see cref="BertConfig.WordEmbeddingRank"/> r) as wide as the teacher starts from
    /// the best rank-r approximation of the teacher's table: rows projected onto the top r principal directions, the projection
    /// map their basis and its bias the teacher's mean row, so table · mapᵀ + bias reproduces the teacher's embeddings as
    /// closely as r dimensions can. Returns the student tensors it set (none when the shapes do not fit).
    /// </summary>
    private static HashSet<string> LowRankWordEmbeddings(Dictionary<string, Tensor> teacherState, Dictionary<string, Tensor> studentState, IChannel channel)
    {
        // Keys as in the classifier's state dict (the encoder's own keys under "encoder.").
        const string table = "encoder.embeddings.word_embeddings.weight", map = "encoder.embeddings.word_projection.weight", bias = "encoder.embeddings.word_projection.bias";
        if (!teacherState.TryGetValue(table, out var teacher) || !studentState.TryGetValue(table, out var rows)
            || !studentState.TryGetValue(map, out var basis) || !studentState.TryGetValue(bias, out var mean)
            || teacher.shape[0] != rows.shape[0] || teacher.shape[1] != basis.shape[0])
            return new HashSet<string>();
        using var scope = torch.NewDisposeScope();
        var (centred, top, centre) = PrincipalDirections(teacher, (int)rows.shape[1]);
        rows.copy_(centred.matmul(top));
        basis.copy_(top);
        mean.copy_(centre.squeeze(0));
        channel.Info(MessageSensitivity.None, "Student word embeddings: the teacher's best rank-{0} approximation ({1} principal directions of {2}).",
            rows.shape[1], rows.shape[1], teacher.shape[1]);
        return new HashSet<string> { table, map, bias };
    }

    /// <summary>The centred rows (float64), the top <paramref name="count"/> principal directions [columns, count] (largest first) and the mean row [1, columns].</summary>
    private static (Tensor Centred, Tensor Top, Tensor Mean) PrincipalDirections(Tensor table, int count)
    {
        var x = table.to(ScalarType.Float64);
        var mean = x.mean(new long[] { 0 }, keepdim: true);
        var centred = x - mean;
        var covariance = centred.t().matmul(centred) / x.shape[0];
        var (_, vectors) = torch.linalg.eigh(covariance); // ascending eigenvalues
        return (centred, vectors.narrow(1, vectors.shape[1] - count, count).flip(1), mean);
    }

    /// <summary>A word or position embedding table with the teacher's rows but fewer columns (enough rows for a projection).</summary>
    private static bool IsProjectableEmbedding(string name, Tensor? teacher, Tensor student) =>
        teacher is not null && name.Contains("embeddings.", StringComparison.Ordinal) && name.EndsWith("_embeddings.weight", StringComparison.Ordinal)
        && teacher.dim() == 2 && student.dim() == 2 && teacher.shape[0] == student.shape[0] && teacher.shape[1] > student.shape[1]
        && teacher.shape[0] > student.shape[1];

    /// <summary>The teacher's key for a student key: layer numbers go through the layer map.</summary>
    private static string TeacherName(string studentName, int[] map)
    {
        const string marker = ".layer.";
        int at = studentName.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
            return studentName;
        int start = at + marker.Length, end = studentName.IndexOf('.', start);
        if (end < 0 || !int.TryParse(studentName.AsSpan(start, end - start), out int layer) || layer + 1 >= map.Length)
            return studentName;
        return studentName[..start] + (map[layer + 1] - 1) + studentName[end..];
    }

    /// <summary>Centred embeddings times their top principal directions, rescaled to the student's initial spread.</summary>
    private static Tensor ProjectEmbeddings(Tensor teacher, int width, Tensor studentInit)
    {
        using var scope = torch.NewDisposeScope();
        var (centred, top, _) = PrincipalDirections(teacher, width);
        var projected = centred.matmul(top);
        projected = projected * (studentInit.to(ScalarType.Float64).std() / projected.std());
        return projected.to(studentInit.dtype).MoveToOuterDisposeScope();
    }
}
