using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Multimodal;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Multimodal;

public class ClipEmbeddingTests
{
    public sealed class TextRow
    {
        public string Text { get; set; } = "";
    }

    public sealed class Embedded
    {
        public float[] Embedding { get; set; } = Array.Empty<float>();
    }

    public sealed class WideRow
    {
        [VectorType(3 * 32 * 48)] public float[] Features { get; set; } = Array.Empty<float>();
    }

    private static float[] Normalize(float[] v)
    {
        double n = Math.Sqrt(v.Sum(x => (double)x * x));
        return v.Select(x => (float)(x / n)).ToArray();
    }

    [Fact]
    public void Image_embeddings_of_raw_pixels_are_the_normalized_reference_features()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ZeroShotImageClassifierTests.ReferenceImages());
        var transformer = ml.Transforms.ClipImageEmbedding("Embedding", "Features", ClipFixture.Model, new ClipImageInputOptions { ImageHeight = 32, ImageWidth = 32 }).Fit(data);
        var rows = ml.Data.CreateEnumerable<Embedded>(transformer.Transform(data), false).Select(r => r.Embedding).ToArray();
        ClipModelTests.AssertClose(ClipFixture.Matrix("image_features").Select(Normalize).ToArray(), rows);
    }

    public sealed class ImageItem
    {
        [Microsoft.ML.Transforms.Image.ImageType(32, 32)] public MLImage Image { get; set; } = null!;
    }

    [Fact]
    public void MLImage_columns_embed_like_rgb_pixel_vectors()
    {
        var ml = new MLContext(seed: 1);
        var bytes = ClipFixture.ImagePixels();
        const int plane = 32 * 32;
        var items = Enumerable.Range(0, 3).Select(n =>
        {
            var rgba = new byte[plane * 4];
            for (int p = 0; p < plane; p++)
            {
                for (int c = 0; c < 3; c++)
                    rgba[p * 4 + 2 - c] = bytes[(n * 3 + c) * plane + p]; // BGRA byte order
                rgba[p * 4 + 3] = 255;
            }
            return new ImageItem { Image = MLImage.CreateFromPixels(32, 32, MLPixelFormat.Bgra32, rgba) };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(items);
        var rows = ml.Transforms.ClipImageEmbedding("Embedding", "Image", ClipFixture.Model).Fit(data).Transform(data)
            .GetColumn<float[]>("Embedding").ToArray();
        ClipModelTests.AssertClose(ClipFixture.Matrix("image_features").Select(Normalize).ToArray(), rows);
    }

    [Fact]
    public void Text_embeddings_are_the_normalized_reference_features_and_survive_save_and_load()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ClipFixture.Texts().Select(t => new TextRow { Text = t }));
        var transformer = ml.Transforms.ClipTextEmbedding("Embedding", "Text", ClipFixture.Model).Fit(data);
        var rows = ml.Data.CreateEnumerable<Embedded>(transformer.Transform(data), false).Select(r => r.Embedding).ToArray();
        ClipModelTests.AssertClose(ClipFixture.Matrix("text_features").Select(Normalize).ToArray(), rows);

        using var temp = new TempDirectory();
        ml.Model.Save(transformer, data.Schema, temp.File("text.zip"));
        var loaded = ml.Model.Load(temp.File("text.zip"), out _);
        var reloaded = ml.Data.CreateEnumerable<Embedded>(loaded.Transform(data), false).Select(r => r.Embedding).ToArray();
        ClipModelTests.AssertClose(rows, reloaded, 0f);
    }

    [Fact]
    public void Wider_images_are_centre_cropped_and_uniform_images_survive_the_bicubic_resize()
    {
        // A 48×32 image has its short side at the model's 32 already: only columns 8..39 are kept.
        var ml = new MLContext(seed: 1);
        var reference = ZeroShotImageClassifierTests.ReferenceImages()[0].Features;
        var wide = new float[3 * 32 * 48];
        var random = new Random(5);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 48; x++)
                    wide[(c * 32 + y) * 48 + x] = x is >= 8 and < 40 ? reference[(c * 32 + y) * 32 + x - 8] : random.Next(256);
        var data = ml.Data.LoadFromEnumerable(new[] { new WideRow { Features = wide } });
        var cropped = ml.Transforms.ClipImageEmbedding("Embedding", "Features", ClipFixture.Model, new ClipImageInputOptions { ImageHeight = 32, ImageWidth = 48 })
            .Fit(data);
        var embedding = ml.Data.CreateEnumerable<Embedded>(cropped.Transform(data), false).Single().Embedding;
        ClipModelTests.AssertClose(new[] { Normalize(ClipFixture.Matrix("image_features")[0]) }, new[] { embedding });

        // A uniform 96×64 image resizes to a uniform 48×32 one (bicubic weights sum to one), then crops to a uniform 32×32.
        float[] Uniform(int h, int w) => Enumerable.Range(0, 3).SelectMany(c => Enumerable.Repeat(60f + 70 * c, h * w)).ToArray();
        var big = ml.Data.LoadFromEnumerable(new[] { new BigRow { Features = Uniform(64, 96) } });
        var small = ml.Data.LoadFromEnumerable(ZeroShotImageClassifierTests.ReferenceImages().Take(1).Select(r => new ZeroShotImageClassifierTests.ImageRow { Features = Uniform(32, 32) }));
        var bigEmbedding = ml.Data.CreateEnumerable<Embedded>(ml.Transforms.ClipImageEmbedding("Embedding", "Features", ClipFixture.Model,
            new ClipImageInputOptions { ImageHeight = 64, ImageWidth = 96 }).Fit(big).Transform(big), false).Single().Embedding;
        var smallEmbedding = ml.Data.CreateEnumerable<Embedded>(ml.Transforms.ClipImageEmbedding("Embedding", "Features", ClipFixture.Model,
            new ClipImageInputOptions { ImageHeight = 32, ImageWidth = 32 }).Fit(small).Transform(small), false).Single().Embedding;
        ClipModelTests.AssertClose(new[] { smallEmbedding }, new[] { bigEmbedding }, 1e-4f);
    }

    public sealed class BigRow
    {
        [VectorType(3 * 64 * 96)] public float[] Features { get; set; } = Array.Empty<float>();
    }
}
