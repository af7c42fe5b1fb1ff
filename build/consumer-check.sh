#!/usr/bin/env bash
# Consumer check: uses MLExtensions the way an application outside this repository does, from its NuGet package.
#   1. pack the library into a temporary folder feed          5. load it in a second process; predictions must match
#   2. `dotnet new console` outside the repository             6. `dotnet publish -c Release -o` and run the published app
#   3. add Microsoft.ML 6.0.x and MLExtensions by version;     7. a self-contained linux-x64 publish, run the same way
#      restore must print no NuGet warning                     (5-7 each start from an unpatched copy of TorchSharp's
#   4. train a NeuralNetwork on embedded data and save it          native library: the GLIBCXX fix runs in each folder)
# Every step says what it does; the first that fails stops the script with its name. Run from anywhere.
source "$(dirname "$0")/check-steps.sh" "consumer check" mlextensions-consumer

version="$(dotnet msbuild "$repo/src/MLExtensions/MLExtensions.csproj" -getProperty:Version -nologo)"
mlnet="6.0.0"
feed="$work/feed"
app="$work/app"

run "pack MLExtensions $version into a folder feed" \
    dotnet pack "$repo/src/MLExtensions/MLExtensions.csproj" -c Release -o "$feed" -nologo -v:q
test -f "$feed/MLExtensions.$version.nupkg" && test -f "$feed/MLExtensions.$version.snupkg"

run "create a console app outside the repository" dotnet new console -o "$app" -n ConsumerCheck --force
cp "$repo/build/ConsumerCheck/Program.cs" "$app/Program.cs"
cp "$repo/samples/data/wine.csv" "$app/wine.csv"
# The repository's package sources plus the folder feed; nothing else of the repository's build reaches the app.
cp "$repo/NuGet.config" "$app/NuGet.config"
dotnet nuget add source "$feed" --name mlextensions-local --configfile "$app/NuGet.config" >/dev/null
# A package of the same version restored by an earlier run would be taken from the global cache instead of the feed.
rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}/mlextensions/$version"
cat > "$app/Directory.Build.props" <<PROPS
<Project>
  <ItemGroup>
    <EmbeddedResource Include="wine.csv" LogicalName="wine.csv" />
  </ItemGroup>
</Project>
PROPS

run "add Microsoft.ML $mlnet and MLExtensions $version" bash -c "
  cd '$app' && dotnet add package Microsoft.ML --version $mlnet --no-restore >/dev/null &&
  dotnet add package MLExtensions --version $version --no-restore >/dev/null"
step="restore without NuGet warnings"; echo "== $step"
restore_log="$work/restore.log"
(cd "$app" && dotnet restore -nologo | tee "$restore_log")
if grep -E "warning NU[0-9]+" "$restore_log"; then
    echo "restore printed NuGet warnings (above)" >&2; exit 1
fi
grep -q "MLExtensions" "$app/obj/project.assets.json"

run "build" bash -c "cd '$app' && dotnet build -c Release --no-restore -nologo -v:q -o '$work/bin'"
run "train, evaluate and save (first process)" dotnet "$work/bin/ConsumerCheck.dll" train "$work/model.zip" "$work/train.txt"
run "load and predict (second process)" dotnet "$work/bin/ConsumerCheck.dll" load "$work/model.zip" "$work/load.txt"
run "predictions identical after load" cmp "$work/train.txt" "$work/load.txt"

run "publish -c Release -o" bash -c "cd '$app' && dotnet publish -c Release --no-restore -nologo -v:q -o '$work/publish'"
run "run the published app" dotnet "$work/publish/ConsumerCheck.dll" load "$work/model.zip" "$work/publish.txt"
run "published predictions identical" cmp "$work/train.txt" "$work/publish.txt"
# The pretrained ResNet-18 reaches applications through the ResNet-18 package's build props (a flowing dependency).
run "pretrained ResNet-18 ONNX in the published folder" test -f "$work/publish/DnnImageModels/ResNet18Onnx/ResNet18.onnx"

run "publish self-contained linux-x64" bash -c "cd '$app' && dotnet publish -c Release -r linux-x64 --self-contained -nologo -v:q -o '$work/self-contained'"
run "run the self-contained app" "$work/self-contained/ConsumerCheck" load "$work/model.zip" "$work/self-contained.txt"
run "self-contained predictions identical" cmp "$work/train.txt" "$work/self-contained.txt"

echo "consumer check passed in $((SECONDS - started)) s (MLExtensions $version, Microsoft.ML $mlnet)"
rm -rf "$work"
