#!/usr/bin/env bash
# The builds that real pipelines run against this repository, from the checkout as it is:
#   a parallel build of the whole solution, `dotnet build -o` of a sample, and `dotnet publish -c Release -o` of a sample
#   (which is then run on its embedded data, so the output folder is known to be complete).
# The first that fails stops the script with its name.
source "$(dirname "$0")/check-steps.sh" "repository builds check" mlextensions-builds
cd "$repo"

run "parallel build of the solution (-m)" dotnet build MLExtensions.sln -m -nologo -v:q
run "dotnet build -o of the samples" dotnet build samples/MLExtensions.Samples -nologo -v:q -o "$work/build-out"
test -f "$work/build-out/MLExtensions.Samples.dll" && test -f "$work/build-out/MLExtensions.dll"
run "no build tool in the build output" bash -c "! ls '$work/build-out' | grep -E '^(Publicizer|Mono\.Cecil)'"
run "dotnet publish -c Release -o of the samples" dotnet publish samples/MLExtensions.Samples -c Release -nologo -v:q -o "$work/publish-out"
run "run the published sample (tabular, embedded data)" dotnet "$work/publish-out/MLExtensions.Samples.dll" tabular --output "$work/sample-output"

echo "repository builds check passed in $((SECONDS - started)) s"
rm -rf "$work"
