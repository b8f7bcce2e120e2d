// The module path is the one wit-bindgen's Go generator writes into the bindings' imports.
// build.sh adds the bindings' package (go.bytecodealliance.org/pkg) in its build copy.
module wit_component

go 1.27.1
