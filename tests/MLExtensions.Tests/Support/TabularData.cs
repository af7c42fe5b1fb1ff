using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.Tests.Support;

/// <summary>Loads the small real tabular data sets shipped in TestData/Tabular (see its README for origin and licence).</summary>
public static class TabularData
{
    public static string Path(string file) => System.IO.Path.Combine(AppContext.BaseDirectory, "TestData", "Tabular", file);

    /// <summary>Wine: 178 rows, 13 features, 3 classes. Columns Features (Vector&lt;Single,13&gt;) and Label (Single 0..2).</summary>
    public static IDataView LoadWine(MLContext ml) => Load(ml, "wine.csv", 13);

    /// <summary>Breast cancer: 569 rows, 30 features, Label 0 = malignant, 1 = benign.</summary>
    public static IDataView LoadBreastCancer(MLContext ml) => Load(ml, "breast_cancer.csv", 30);

    private static IDataView Load(MLContext ml, string file, int features)
    {
        var loader = ml.Data.CreateTextLoader(new TextLoader.Options
        {
            Separators = new[] { ',' },
            HasHeader = true,
            Columns = new[]
            {
                new TextLoader.Column("Features", DataKind.Single, 0, features - 1),
                new TextLoader.Column("Label", DataKind.Single, features),
            },
        });
        // Cache so the data can shuffle and cursors are cheap.
        return ml.Data.Cache(loader.Load(Path(file)));
    }
}

/// <summary>Rows for in-memory data sets built by tests.</summary>
public sealed class VectorRow
{
    [VectorType(2)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public float Label { get; set; }
}

public sealed class BinaryVectorRow
{
    [VectorType(2)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public bool Label { get; set; }
}

/// <summary>Output of a multiclass model whose PredictedLabel is still a key.</summary>
public sealed class MulticlassPrediction
{
    public uint PredictedLabel { get; set; }

    public float[] Score { get; set; } = Array.Empty<float>();
}

public sealed class BinaryPrediction
{
    public bool PredictedLabel { get; set; }

    public float Score { get; set; }

    public float Probability { get; set; }
}

public sealed class RegressionPrediction
{
    public float Score { get; set; }
}
