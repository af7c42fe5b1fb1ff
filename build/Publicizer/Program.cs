using Mono.Cecil;

// Usage: Publicizer <input.dll> <output.dll>
// Produces a reference-only copy of <input.dll> whose types, methods and fields are all public.
// Compiler-generated fields (names containing '<') stay as they are so that no two members clash.
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: Publicizer <input assembly> <output assembly>");
    return 2;
}

string input = Path.GetFullPath(args[0]);
string output = Path.GetFullPath(args[1]);
Directory.CreateDirectory(Path.GetDirectoryName(output)!);

var resolver = new DefaultAssemblyResolver();
resolver.AddSearchDirectory(Path.GetDirectoryName(input)!);
using (var assembly = AssemblyDefinition.ReadAssembly(input, new ReaderParameters { AssemblyResolver = resolver }))
{
    foreach (var type in assembly.MainModule.GetTypes())
        Publicize(type);

    // Write to a temporary file first so an interrupted build never leaves a half-written reference.
    string temp = output + ".tmp";
    assembly.Write(temp);
    File.Move(temp, output, overwrite: true);
}
return 0;

static void Publicize(TypeDefinition type)
{
    if (type.IsNested)
        type.IsNestedPublic = true;
    else
        type.IsPublic = true;

    foreach (var method in type.Methods)
        method.IsPublic = true;

    foreach (var field in type.Fields)
    {
        if (!field.Name.Contains('<'))
            field.IsPublic = true;
    }
}
