using Microsoft.ML;
using Xunit;

namespace MLExtensions.Tests.Explainability;

/// <summary>Explanation models saved by earlier layouts still load and explain as they did.</summary>
public class ExplanationFileCompatibilityTests
{
    [Fact]
    public void A_layout_1_1_explainer_loads_and_gives_the_attributions_it_gave_when_saved()
    {
        var ml = new MLContext(seed: 1);
        string path = Path.Combine(AppContext.BaseDirectory, "TestData", "Explainability", "explanation-1.1.zip");
        var explainer = ml.Model.Load(path, out _);

        var row = ExplanationTestModels.Rows(ml, new[] { new[] { 1f, -2f, 0.5f } }, 3);
        var explained = ExplanationTestModels.Read(explainer.Transform(row))[0];

        // Printed by the 1.1 code (commit dfee38e) for this row, right after it saved the file.
        float[] expected = { -0.027359268f, 0.7744073f, -0.25209948f };
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i], explained.Attributions[i], 5);
        Assert.Equal(0.35435107f, explained.BaseValue, 5);
    }
}
