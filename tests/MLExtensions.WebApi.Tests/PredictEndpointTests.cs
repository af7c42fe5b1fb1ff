using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MLExtensions.Tests.Text;
using Xunit;

namespace MLExtensions.WebApi.Tests;

/// <summary>POST /predict and GET /health, served in memory.</summary>
public sealed class PredictEndpointTests : IClassFixture<ReviewModels>, IDisposable
{
    private readonly ReviewModels _models;
    private readonly ServingFactory _factory;
    private readonly HttpClient _client;

    public PredictEndpointTests(ReviewModels models)
    {
        _models = models;
        _factory = new ServingFactory(models.First);
        _client = _factory.CreateClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
    }

    [Fact]
    public async Task ReviewsAreScoredExactlyAsAnInProcessPredictionEngineScoresThem()
    {
        var texts = TinyText.Make(20, seed: 7).Select(r => r.Text).ToList();
        var expected = ReviewModels.ScoreInProcess(_models.First, texts);

        for (int i = 0; i < texts.Count; i++)
        {
            var response = await _client.PostAsJsonAsync("/predict", new { text = texts[i] });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = (await response.Content.ReadFromJsonAsync<PredictResponse>())!;
            Assert.Equal(expected[i].PredictedLabel, body.Label);
            Assert.Equal(expected[i].Probability, body.Probability);
            Assert.Equal(expected[i].Score, body.Score);
            Assert.Equal(1, body.ModelVersion);
        }
        // The model learned the rule, so the answers are about the review and not a constant.
        Assert.Contains(expected, p => p.PredictedLabel);
        Assert.Contains(expected, p => !p.PredictedLabel);
    }

    [Fact]
    public async Task ConcurrentRequestsShareThePoolAndAllSucceed()
    {
        var texts = TinyText.Make(16, seed: 9).Select(r => r.Text).ToList();
        var expected = ReviewModels.ScoreInProcess(_models.First, texts);

        var tasks = Enumerable.Range(0, 8).Select(async client =>
        {
            var answers = new List<(int Index, PredictResponse Body)>();
            for (int round = 0; round < 10; round++)
            {
                int index = (client + round) % texts.Count;
                var response = await _client.PostAsJsonAsync("/predict", new { text = texts[index] });
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                answers.Add((index, (await response.Content.ReadFromJsonAsync<PredictResponse>())!));
            }
            return answers;
        });
        foreach (var (index, body) in (await Task.WhenAll(tasks)).SelectMany(a => a))
            Assert.Equal(expected[index].Probability, body.Probability);
    }

    [Theory]
    [InlineData("", "body", "the request body is empty")]
    [InlineData("   ", "body", "the request body is empty")]
    [InlineData("{}", "text", "the field is required.")]
    [InlineData("{\"text\": \"\"}", "text", "the text is empty.")]
    [InlineData("{\"text\": 42}", "text", "expected a JSON string, found a number.")]
    [InlineData("{\"text\": null}", "text", "expected a JSON string, found null.")]
    [InlineData("{\"text\": [\"a\"]}", "text", "expected a JSON string, found an array.")]
    [InlineData("{\"text\": \"great tea\", \"lang\": \"en\"}", "lang", "unknown field 'lang'; the only field is 'text'.")]
    [InlineData("[\"great tea\"]", "body", "expected a JSON object such as {\"text\": \"...\"}, found an array.")]
    [InlineData("{\"text\": \"great", "body", "the body is not valid JSON")]
    public async Task BadRequestsGetProblemDetailsNamingTheField(string body, string field, string message)
    {
        var response = await _client.PostAsync("/predict", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await ReadProblem(response);
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.Equal("The request is not valid.", problem.GetProperty("title").GetString());
        var errors = problem.GetProperty("errors");
        Assert.Single(errors.EnumerateObject());
        Assert.StartsWith(message, errors.GetProperty(field)[0].GetString());
    }

    [Fact]
    public async Task TextOverTheLimitIsRejectedWithItsLength()
    {
        string text = string.Join(' ', Enumerable.Repeat("great", 41));   // 245 characters; the factory's limit is 200
        var response = await _client.PostAsJsonAsync("/predict", new { text });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await ReadProblem(response);
        Assert.Equal("the text has 245 characters; at most 200 are accepted.", problem.GetProperty("errors").GetProperty("text")[0].GetString());
    }

    [Fact]
    public async Task BodiesOverTheSizeLimitGet413()
    {
        string text = new('a', 5000);   // the factory's body limit is 4,096 bytes
        var response = await _client.PostAsJsonAsync("/predict", new { text });

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var problem = await ReadProblem(response);
        Assert.Equal("the request body exceeds 4096 bytes.", problem.GetProperty("errors").GetProperty("body")[0].GetString());
    }

    [Fact]
    public async Task NonJsonContentGets415()
    {
        var response = await _client.PostAsync("/predict", new StringContent("great tea", Encoding.UTF8, "text/plain"));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        var problem = await ReadProblem(response);
        Assert.StartsWith("expected Content-Type application/json, found 'text/plain", problem.GetProperty("errors").GetProperty("body")[0].GetString());
    }

    [Fact]
    public async Task HealthReportsTheServingModel()
    {
        var response = await _client.GetAsync("/health");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
    }

    private static async Task<JsonElement> ReadProblem(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }
}
