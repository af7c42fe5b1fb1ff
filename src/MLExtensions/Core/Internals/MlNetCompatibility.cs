using System.Reflection;
using System.Reflection.Metadata;

namespace MLExtensions.Core.Internals;

/// <summary>
/// Checks, once per process, that the ML.NET assemblies loaded at run time still have every ML.NET type and member
/// this library was compiled against.
/// </summary>
/// <remarks>
/// The library compiles against publicized copies of Microsoft.ML.Core and Microsoft.ML.Data (see the README), so it
/// uses internals that ML.NET may rename or remove in any release. Without this check an application that forces
/// another ML.NET version fails with a <see cref="MissingMethodException"/> somewhere inside a Fit or a model load;
/// with it, the first entry point (a catalog method, a Fit, a model load) fails with one message that names both
/// versions and the first missing members. The list of what to check is not maintained by hand: it is read from this
/// assembly's own metadata (every member and type reference into those two assemblies), so it is always complete.
/// </remarks>
internal static class MlNetCompatibility
{
    /// <summary>The ML.NET assemblies whose internals the library uses.</summary>
    internal static readonly string[] CheckedAssemblies = { "Microsoft.ML.Core", "Microsoft.ML.Data" };

    private static readonly Lazy<MlNetCompatibilityReport> Report = new(() => Check(ResolveLoaded));

    /// <summary>Throws when the loaded ML.NET differs from the one compiled against in anything the library uses.</summary>
    /// <exception cref="InvalidOperationException">A type or member the library uses is missing from the loaded ML.NET.</exception>
    public static void EnsureCompatible()
    {
        var report = Report.Value;
        if (report.Missing.Count > 0)
            throw new InvalidOperationException(report.Describe());
    }

    /// <summary>Checks every reference of this assembly into <see cref="CheckedAssemblies"/> against what
    /// <paramref name="resolve"/> returns for each assembly name (null: not loadable).</summary>
    internal static unsafe MlNetCompatibilityReport Check(Func<string, Assembly?> resolve)
    {
        var self = typeof(MlNetCompatibility).Assembly;
        // Raw metadata works wherever the assembly came from (a file, a single-file bundle, a byte array).
        if (!self.TryGetRawMetadata(out byte* blob, out int length))
            return new MlNetCompatibilityReport(MlNetBuildInfo.Version, LoadedVersion(resolve), 0, Array.Empty<string>());
        var reader = new MetadataReader(blob, length);
        var checker = new ReferenceChecker(reader, resolve);
        var missing = checker.Run();
        return new MlNetCompatibilityReport(MlNetBuildInfo.Version, LoadedVersion(resolve), checker.CheckedCount, missing);
    }

    private static Assembly? ResolveLoaded(string name)
    {
        try
        {
            return Assembly.Load(new AssemblyName(name));
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            return null;
        }
    }

    private static string LoadedVersion(Func<string, Assembly?> resolve)
    {
        var versions = CheckedAssemblies
            .Select(name => resolve(name))
            .Select(a => a?.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? a?.GetName().Version?.ToString() ?? "not found")
            .Select(v => v.Split('+')[0])   // "6.0.0+<commit>": the commit adds nothing for the reader
            .Distinct()
            .ToArray();
        return string.Join(" / ", versions);
    }

    /// <summary>Walks the type and member references of one metadata reader, resolving each against the loaded assemblies.</summary>
    private sealed class ReferenceChecker
    {
        private readonly MetadataReader _reader;
        private readonly Func<string, Assembly?> _resolve;
        private readonly Dictionary<string, Assembly?> _assemblies = new(StringComparer.Ordinal);
        private readonly Dictionary<TypeReferenceHandle, Type?> _types = new();
        private readonly SortedSet<string> _missing = new(StringComparer.Ordinal);

        public ReferenceChecker(MetadataReader reader, Func<string, Assembly?> resolve)
        {
            _reader = reader;
            _resolve = resolve;
        }

        public int CheckedCount { get; private set; }

        public IReadOnlyList<string> Run()
        {
            foreach (var handle in _reader.TypeReferences)
            {
                if (ScopeAssembly(handle) is null)
                    continue;
                CheckedCount++;
                if (Resolve(handle) is null)
                    _missing.Add($"type {FullName(handle)}");
            }
            foreach (var handle in _reader.MemberReferences)
            {
                var member = _reader.GetMemberReference(handle);
                var parent = DeclaringTypeReference(member.Parent);
                if (parent is null || ScopeAssembly(parent.Value) is null)
                    continue;
                CheckedCount++;
                var type = Resolve(parent.Value);
                if (type is null)
                    continue;   // already reported as a missing type
                string name = _reader.GetString(member.Name);
                if (!HasMember(type, name, member))
                    _missing.Add($"{DescribeKind(member)} {type.FullName}.{name}");
            }
            return _missing.ToList();
        }

        private string DescribeKind(MemberReference member) =>
            member.GetKind() == MemberReferenceKind.Field ? "field" : "method";

        private bool HasMember(Type type, string name, MemberReference member)
        {
            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            var signature = _reader.GetBlobReader(member.Signature);
            var header = signature.ReadSignatureHeader();
            if (header.Kind == SignatureKind.Field)
                return AllBases(type).Any(t => t.GetField(name, all) is not null);
            if (header.IsGeneric)
                signature.ReadCompressedInteger();
            int parameterCount = signature.ReadCompressedInteger();
            IEnumerable<MethodBase> candidates = name == ".ctor" || name == ".cctor"
                ? type.GetConstructors(all)
                : AllBases(type).SelectMany(t => t.GetMethods(all)).Where(m => m.Name == name);
            // Name and arity: enough to catch a removed, renamed or re-shaped member without decoding every type.
            return candidates.Any(m => m.GetParameters().Length == parameterCount);
        }

        private static IEnumerable<Type> AllBases(Type type)
        {
            for (var t = type; t is not null; t = t.BaseType)
                yield return t;
            foreach (var i in type.GetInterfaces())
                yield return i;
        }

        /// <summary>The type reference a member reference hangs off: directly, or the generic type of an instantiation.</summary>
        private TypeReferenceHandle? DeclaringTypeReference(EntityHandle parent)
        {
            if (parent.Kind == HandleKind.TypeReference)
                return (TypeReferenceHandle)parent;
            if (parent.Kind != HandleKind.TypeSpecification)
                return null;
            var blob = _reader.GetBlobReader(_reader.GetTypeSpecification((TypeSpecificationHandle)parent).Signature);
            if (blob.ReadSignatureTypeCode() != SignatureTypeCode.GenericTypeInstance)
                return null;
            blob.ReadSignatureTypeCode();   // class or value type
            var generic = blob.ReadTypeHandle();
            return generic.Kind == HandleKind.TypeReference ? (TypeReferenceHandle)generic : null;
        }

        /// <summary>The checked assembly a type reference points into (through its declaring types), else null.</summary>
        private string? ScopeAssembly(TypeReferenceHandle handle)
        {
            var scope = _reader.GetTypeReference(handle).ResolutionScope;
            while (scope.Kind == HandleKind.TypeReference)
                scope = _reader.GetTypeReference((TypeReferenceHandle)scope).ResolutionScope;
            if (scope.Kind != HandleKind.AssemblyReference)
                return null;
            string name = _reader.GetString(_reader.GetAssemblyReference((AssemblyReferenceHandle)scope).Name);
            return CheckedAssemblies.Contains(name, StringComparer.Ordinal) ? name : null;
        }

        private Type? Resolve(TypeReferenceHandle handle)
        {
            if (_types.TryGetValue(handle, out var cached))
                return cached;
            var reference = _reader.GetTypeReference(handle);
            Type? type;
            if (reference.ResolutionScope.Kind == HandleKind.TypeReference)
            {
                var declaring = Resolve((TypeReferenceHandle)reference.ResolutionScope);
                type = declaring?.GetNestedType(_reader.GetString(reference.Name), BindingFlags.Public | BindingFlags.NonPublic);
            }
            else
            {
                string assemblyName = ScopeAssembly(handle)!;
                if (!_assemblies.TryGetValue(assemblyName, out var assembly))
                    _assemblies[assemblyName] = assembly = _resolve(assemblyName);
                type = assembly?.GetType(FullName(handle), throwOnError: false);
            }
            _types[handle] = type;
            return type;
        }

        private string FullName(TypeReferenceHandle handle)
        {
            var reference = _reader.GetTypeReference(handle);
            string name = _reader.GetString(reference.Name);
            if (reference.ResolutionScope.Kind == HandleKind.TypeReference)
                return FullName((TypeReferenceHandle)reference.ResolutionScope) + "+" + name;
            string ns = _reader.GetString(reference.Namespace);
            return ns.Length == 0 ? name : ns + "." + name;
        }
    }
}

/// <summary>The outcome of <see cref="MlNetCompatibility.Check"/>.</summary>
/// <param name="BuiltAgainst">The ML.NET package version the library was compiled against.</param>
/// <param name="Loaded">The version of the ML.NET assemblies this process loads.</param>
/// <param name="CheckedCount">How many type and member references were checked.</param>
/// <param name="Missing">The references that the loaded assemblies lack.</param>
internal sealed record MlNetCompatibilityReport(string BuiltAgainst, string Loaded, int CheckedCount, IReadOnlyList<string> Missing)
{
    /// <summary>The message of the exception thrown for an incompatible ML.NET.</summary>
    public string Describe()
    {
        const int shown = 5;
        string examples = string.Join("; ", Missing.Take(shown)) + (Missing.Count > shown ? $"; and {Missing.Count - shown} more" : "");
        string ownVersion = typeof(MlNetCompatibility).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "?";
        return $"MLExtensions {ownVersion} was built against ML.NET {BuiltAgainst}, but this process loaded ML.NET {Loaded} " +
               $"(Microsoft.ML.Core / Microsoft.ML.Data), whose internals differ: {Missing.Count} of the {CheckedCount} ML.NET types and " +
               $"members MLExtensions uses are missing ({examples}). Reference Microsoft.ML {MinorSeries(BuiltAgainst)}.x, as the MLExtensions " +
               $"package declares, or use an MLExtensions version built for ML.NET {Loaded}.";
    }

    private static string MinorSeries(string version)
    {
        var parts = version.Split('.');
        return parts.Length >= 2 ? parts[0] + "." + parts[1] : version;
    }
}
