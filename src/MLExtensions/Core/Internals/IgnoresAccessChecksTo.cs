// The library compiles against publicized copies of these ML.NET assemblies (see MLExtensions.csproj).
// CoreCLR honours this attribute by name and skips the visibility checks for the listed assemblies,
// which is what lets our transformers implement ML.NET's internal save/load and scoring contracts.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]

namespace System.Runtime.CompilerServices
{
    /// <summary>Declares an assembly whose non-public members this assembly may use at run time.</summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
    internal sealed class IgnoresAccessChecksToAttribute : Attribute
    {
        public IgnoresAccessChecksToAttribute(string assemblyName) => AssemblyName = assemblyName;

        public string AssemblyName { get; }
    }
}
