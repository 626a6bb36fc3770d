// Package examples holds the runnable examples, one main package per directory, and this test of
// the README's code: what a newcomer pastes from README.md must compile against this module.
package examples

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// block is one ```go block of README.md.
type block struct {
	line int // README line of its first line of code
	code string
}

// TestREADMEGoBlocks builds every ```go block of README.md against this module with `go build`,
// offline (GOPROXY=off: the module cache must already hold every dependency, as it does for the
// other tests). A block that starts with "package" is a whole program and is built as it is.
// Any other block is a fragment: declarations, or statements (which are wrapped in a function),
// compiled next to readmeFreeNames, the few names fragments use without declaring them. A
// placeholder body "{ ... }" stands for code the reader writes. Errors point at README lines.
func TestREADMEGoBlocks(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no go command in PATH")
		}
		t.Skip("no go command in PATH: it builds the README's code")
	}
	root, blocks := readme(t)
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block")
	}

	tmp := t.TempDir()
	overlay := map[string]string{}
	var pkgs []string
	byPkg := map[string]block{}
	add := func(b block, name, src string) {
		// The package exists only in the overlay: nothing is written into the source tree.
		rel := fmt.Sprintf("examples/readmebuild/line%d", b.line)
		real := filepath.Join(tmp, fmt.Sprintf("line%d-%s", b.line, name))
		if err := os.WriteFile(real, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		overlay[filepath.Join(root, rel, name)] = real
		pkg := "ginws.dev/" + rel
		if !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
			byPkg[pkg] = b
		}
	}
	for _, b := range blocks {
		if strings.HasPrefix(b.code, "package ") {
			add(b, "main.go", fmt.Sprintf("//line README.md:%d\n%s", b.line, b.code))
			continue
		}
		src, err := wrapFragment(b)
		if err != nil {
			t.Errorf("README.md:%d: ```go block is neither Go declarations nor Go statements: %v", b.line, err)
			continue
		}
		add(b, "fragment.go", src)
		add(b, "freenames.go", readmeFreeNames)
	}
	if len(pkgs) == 0 {
		return
	}

	ov, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		t.Fatal(err)
	}
	ovFile := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
		t.Fatal(err)
	}
	// -o os.DevNull: every package is compiled (main or not) and nothing is written.
	args := append([]string{"build", "-overlay", ovFile, "-o", os.DevNull}, pkgs...)
	cmd := exec.Command(goCmd, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// go build prints "# PACKAGE" before the errors of each package that failed.
	msgs := splitByPackage(out)
	reported := false
	for _, pkg := range pkgs { // in README order
		if msg, ok := msgs[pkg]; ok {
			t.Errorf("README.md:%d: this ```go block does not compile:\n%s", byPkg[pkg].line-1, msg)
			reported = true
		}
	}
	if !reported {
		t.Errorf("go build of the README's Go blocks failed:\n%s", out)
	}
}

// TestREADMEQualifiedNames checks the names in the README's prose and tables: every `pkg.Name`
// written with one of this module's package names must be exported by that package, so a rename
// cannot leave the README behind.
func TestREADMEQualifiedNames(t *testing.T) {
	root, _ := readme(t)
	text, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]map[string]bool{}
	for name, dir := range modulePackages {
		exported[name] = exportedNames(t, filepath.Join(root, dir))
	}
	ref := regexp.MustCompile(`\b(` + strings.Join(sortedKeys(modulePackages), "|") + `)\.([A-Z][A-Za-z0-9_]*)`)
	span := regexp.MustCompile("`[^`\n]+`")
	inFence := false
	for i, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue // fenced Go is compiled by TestREADMEGoBlocks
		}
		for _, s := range span.FindAllString(line, -1) {
			for _, m := range ref.FindAllStringSubmatch(s, -1) {
				if !exported[m[1]][m[2]] {
					t.Errorf("README.md:%d: %s: package %s (%s) exports no %s", i+1, s, m[1], modulePackages[m[1]], m[2])
				}
			}
		}
	}
}

// modulePackages are the module's packages the README names, by package name.
var modulePackages = map[string]string{
	"ginws":      "ginws",
	"layer":      "ginws/layer",
	"layertest":  "ginws/layertest",
	"wstest":     "ginws/wstest",
	"redislayer": "ginws/redislayer",
	"yjs":        "ginws/yjs",
	"ystore":     "ginws/yjs/ystore",
	"redisstore": "ginws/yjs/redisstore",
	"yproto":     "ginws/yjs/yproto",
	"yupdate":    "ginws/yjs/yupdate",
	"middleware": "middleware",
}

// fragmentImports are the packages a fragment may use by name; its file imports those it uses.
var fragmentImports = map[string]string{
	"context":    "context",
	"errors":     "errors",
	"fmt":        "fmt",
	"http":       "net/http",
	"slog":       "log/slog",
	"time":       "time",
	"url":        "net/url",
	"gin":        "github.com/gin-gonic/gin",
	"jwt":        "github.com/golang-jwt/jwt/v5",
	"sessions":   "github.com/gorilla/sessions",
	"ginws":      "ginws.dev/ginws",
	"layer":      "ginws.dev/ginws/layer",
	"layertest":  "ginws.dev/ginws/layertest",
	"wstest":     "ginws.dev/ginws/wstest",
	"redislayer": "ginws.dev/ginws/redislayer",
	"yjs":        "ginws.dev/ginws/yjs",
	"ystore":     "ginws.dev/ginws/yjs/ystore",
	"redisstore": "ginws.dev/ginws/yjs/redisstore",
	"middleware": "ginws.dev/middleware",
}

// readmeFreeNames declares what the app around a README fragment would have: the Gin engine, the
// ginws.Server, a test's t and ctx, a login view... A fragment that needs another name fails
// with "undefined: NAME" at its README line; declare the name here.
const readmeFreeNames = `package fragment

import (
	"context"
	"crypto/rsa"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/redis/rueidis"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

var (
	r         *gin.Engine    // the app's Gin engine
	engine    *gin.Engine    // the same, in a test
	ws        *ginws.Server  // ginws.New(...)
	ctx       context.Context
	t         *testing.T
	got       map[string]any
	dir       string         // where a FilesystemStore keeps sessions
	key       []byte         // a session signing key
	publicKey *rsa.PublicKey // verifies JWTs
	lay       layer.Layer    // a channel layer
	client    rueidis.Client // a Redis client
	auth      gin.HandlerFunc
	room      string
	update    []byte
)

type User struct{ Name string }

// Chat is a consumer the fragments add methods to.
type Chat struct{ ginws.WebsocketConsumer }

func newChat() ginws.Consumer                                         { return new(Chat) }
func loginView(c *gin.Context)                                        {}
func findUser(ctx context.Context, id any) (*User, bool, error)      { return nil, false, nil }
func lookupAPIKey(key string) (*User, bool)                           { return nil, false }
func loadFromDB(ctx context.Context, room string) ([]byte, error)    { return nil, nil }
`

var (
	elided       = regexp.MustCompile(`\{ \.\.\. \}`)
	majorVersion = regexp.MustCompile(`^v[0-9]+$`)
)

// wrapFragment returns a compilable file for a fragment: its declarations as they are, or its
// statements in a function that then uses every variable they declare (a fragment shows calls;
// it need not use what they return). A //line comment maps the code back to the README.
// A fragment may start with its own import declarations — for a package fragmentImports does not
// know, or one named like a package it does (gin-contrib's sessions); those names are not
// imported again.
func wrapFragment(b block) (string, error) {
	code := elided.ReplaceAllString(b.code, `{ panic("elided in README") }`)
	own, ownNames, code, line, err := ownImports(code, b.line)
	if err != nil {
		return "", err
	}
	mapped := fmt.Sprintf("//line README.md:%d\n%s", line, code)

	fset := token.NewFileSet()
	var imports, uses []string
	f, declErr := parser.ParseFile(fset, "fragment.go", "package fragment\n"+mapped, parser.SkipObjectResolution)
	stmts := declErr != nil
	if stmts {
		var err error
		f, err = parser.ParseFile(fset, "fragment.go", "package fragment\nfunc _() {\n"+mapped+"\n}\n", parser.SkipObjectResolution)
		if err != nil {
			return "", fmt.Errorf("as declarations: %v; as statements: %v", declErr, err)
		}
		body := f.Decls[0].(*ast.FuncDecl).Body
		for _, st := range body.List {
			uses = append(uses, declared(st)...)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				if path, ok := fragmentImports[id.Name]; ok && !ownNames[id.Name] && !slices.Contains(imports, path) {
					imports = append(imports, path)
				}
			}
		}
		return true
	})
	sort.Strings(imports)

	var src strings.Builder
	src.WriteString("package fragment\n\n")
	if own != "" {
		fmt.Fprintf(&src, "//line README.md:%d\n%s\n", b.line, own)
	}
	for _, p := range imports {
		fmt.Fprintf(&src, "import %q\n", p)
	}
	if !stmts {
		src.WriteString(mapped + "\n")
		return src.String(), nil
	}
	src.WriteString("\nfunc _() {\n" + mapped + "\n")
	for _, name := range uses {
		fmt.Fprintf(&src, "\t_ = %s\n", name)
	}
	src.WriteString("}\n")
	return src.String(), nil
}

// ownImports splits the import declarations a fragment starts with from the rest of its code. It
// returns them, the package names they bind, the rest, and the README line the rest starts on.
func ownImports(code string, line int) (decl string, names map[string]bool, rest string, restLine int, err error) {
	if !strings.HasPrefix(strings.TrimSpace(code), "import") {
		return "", nil, code, line, nil
	}
	const head = "package fragment\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "fragment.go", head+code, parser.ImportsOnly)
	if err != nil || len(f.Decls) == 0 {
		return "", nil, "", 0, fmt.Errorf("its import declarations: %v", err)
	}
	end := fset.Position(f.Decls[len(f.Decls)-1].End()).Offset - len(head)
	names = map[string]bool{}
	for _, spec := range f.Imports {
		path := strings.Trim(spec.Path.Value, `"`)
		name := pathpkg.Base(path)
		if majorVersion.MatchString(name) { // ".../gin-jwt/v2" is package jwt: the README names it
			name = pathpkg.Base(pathpkg.Dir(path))
		}
		if spec.Name != nil {
			name = spec.Name.Name
		}
		names[name] = true
	}
	return code[:end], names, code[end:], line + strings.Count(code[:end], "\n"), nil
}

// declared returns the variables a top-level statement of a fragment declares.
func declared(st ast.Stmt) []string {
	var names []string
	switch st := st.(type) {
	case *ast.AssignStmt:
		if st.Tok == token.DEFINE {
			for _, e := range st.Lhs {
				if id, ok := e.(*ast.Ident); ok && id.Name != "_" {
					names = append(names, id.Name)
				}
			}
		}
	case *ast.DeclStmt:
		if gd, ok := st.Decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
			for _, spec := range gd.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if id.Name != "_" {
						names = append(names, id.Name)
					}
				}
			}
		}
	}
	return names
}

// readme returns the module root and the ```go blocks of its README.md.
func readme(t *testing.T) (string, []block) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []block
		cur    *block
		code   strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &block{line: n + 1}
			code.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.code = code.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			code.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: ```go block never closed", cur.line-1)
	}
	return root, blocks
}

// splitByPackage splits go build's output into the messages of each package.
func splitByPackage(out []byte) map[string]string {
	msgs := map[string]string{}
	pkg := ""
	for _, line := range bytes.Split(out, []byte("\n")) {
		if p, ok := bytes.CutPrefix(line, []byte("# ")); ok {
			pkg = string(p)
			continue
		}
		if pkg != "" && len(line) > 0 {
			msgs[pkg] += "\t" + string(line) + "\n"
		}
	}
	return msgs
}

// exportedNames returns the exported top-level names of the Go package in dir (tests excluded).
func exportedNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					names[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						names[s.Name.Name] = s.Name.IsExported()
					case *ast.ValueSpec:
						for _, id := range s.Names {
							names[id.Name] = id.IsExported()
						}
					}
				}
			}
		}
	}
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
