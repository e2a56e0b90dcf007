package medsettle_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The layout's import rules, read from the source (test files aside: a
// test may wire real adapters together, as main does):
//   - a domain package (rules, settlement and below, monitor, workflows)
//     imports no adapter;
//   - an adapter imports domain packages and, of the adapters, only itself
//     and the national wire contract (adapters/fsi), save the exceptions below.
//
// Each exception says why it is one.
var importExceptions = map[[2]string]string{
	{"loadgen", "fsi/client"}: "loadgen drives a platform as many HIS counters would, through the integrators' client",
	{"demo", "fsi/client"}:    "demo drives a platform as one HIS would, through the integrators' client",
}

const module = "github.com/medsettle/medsettle"

var domain = []string{"rules", "settlement", "monitor", "workflows"}

func TestImportRules(t *testing.T) {
	imports := sourceImports(t)
	require.NotEmpty(t, imports["settlement"], "the walk found the engine")
	var broken []string
	used := map[[2]string]bool{}
	for pkg, deps := range imports {
		for _, dep := range deps {
			to, ok := strings.CutPrefix(dep, "adapters/")
			if !ok {
				continue
			}
			if isDomain(pkg) {
				broken = append(broken, pkg+" (domain) imports "+dep)
				continue
			}
			from, ok := strings.CutPrefix(pkg, "adapters/")
			if !ok || adapterOf(from) == adapterOf(to) || to == "fsi" {
				continue
			}
			key := [2]string{adapterOf(from), to}
			if _, ok := importExceptions[key]; ok {
				used[key] = true
				continue
			}
			broken = append(broken, pkg+" imports "+dep)
		}
	}
	sort.Strings(broken)
	require.Empty(t, broken, "adapters import domain packages and adapters/fsi only")
	for key, why := range importExceptions {
		require.True(t, used[key], "exception %v (%s) is no longer needed: remove it", key, why)
	}
}

// The rule holds against a breach, so that the test above can fail.
func TestImportRulesSeeABreach(t *testing.T) {
	require.True(t, isDomain("settlement/national"))
	require.False(t, isDomain("adapters/postgres"))
	require.Equal(t, "postgres", adapterOf("postgres/pgtest"))
	require.NotEqual(t, adapterOf("kafka"), adapterOf("postgres"))
}

func isDomain(pkg string) bool {
	for _, d := range domain {
		if pkg == d || strings.HasPrefix(pkg, d+"/") {
			return true
		}
	}
	return false
}

// adapterOf names the adapter a package under adapters/ belongs to: its first element.
func adapterOf(p string) string {
	first, _, _ := strings.Cut(p, "/")
	return first
}

// sourceImports maps each package directory (relative to the module root) to
// the module's packages its non-test files import, relative too.
func sourceImports(t *testing.T) map[string][]string {
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(p))
		for _, imp := range f.Imports {
			dep, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if rel, ok := strings.CutPrefix(dep, module+"/"); ok {
				out[pkg] = append(out[pkg], path.Clean(rel))
			}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// Files by entity and functions that fit a screen: no Go file over 700
// lines, no function over 100 (in a test, not counting its table data).
func TestSizes(t *testing.T) {
	const maxFile, maxFunc = 700, 100
	var over []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if n := fset.File(f.Pos()).LineCount(); n > maxFile {
			over = append(over, p+": "+strconv.Itoa(n)+" lines")
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
			if strings.HasSuffix(p, "_test.go") {
				n -= tableLines(fset, fn)
			}
			if n > maxFunc {
				over = append(over, p+": func "+fn.Name.Name+" "+strconv.Itoa(n)+" lines")
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, over)
}

// tableLines counts the lines of fn's test tables: the outermost slice or
// map literals of three or more elements.
func tableLines(fset *token.FileSet, fn *ast.FuncDecl) int {
	n := 0
	ast.Inspect(fn.Body, func(node ast.Node) bool {
		lit, ok := node.(*ast.CompositeLit)
		if !ok {
			return true
		}
		switch lit.Type.(type) {
		case *ast.ArrayType, *ast.MapType:
			if len(lit.Elts) >= 3 {
				n += fset.Position(lit.End()).Line - fset.Position(lit.Pos()).Line + 1
				return false
			}
		}
		return true
	})
	return n
}
