using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>Chooses the training device from <c>MLContext.GpuDeviceId</c> / <c>FallbackToCpu</c>, as ML.NET's own GPU trainers do.</summary>
internal static class TorchDevices
{
    public static Device Resolve(IHostEnvironment env, IChannel channel)
    {
        if (env is not IHostEnvironmentInternal { GpuDeviceId: int gpu } settings)
            return CPU;
        if (torch.cuda.is_available())
            return torch.device(DeviceType.CUDA, gpu);
        if (settings.FallbackToCpu)
        {
            channel.Warning(MessageSensitivity.None, "GPU {0} was requested but CUDA is not available (this build uses TorchSharp-cpu); training on the CPU.", gpu);
            return CPU;
        }
        throw new InvalidOperationException($"MLContext.GpuDeviceId is {gpu} but CUDA is not available, and MLContext.FallbackToCpu is false.");
    }

    /// <summary>The run's seed: the options' seed, else the MLContext seed, else 0.</summary>
    public static int ResolveSeed(IHostEnvironment env, int? seed) =>
        seed ?? (env is IHostEnvironmentInternal { Seed: int contextSeed } ? contextSeed : 0);
}
