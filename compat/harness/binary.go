package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// RootModule is the module path of the repository root (where cmd/distrod lives).
const RootModule = "github.com/distro-registry/distro"

// BinEnv names the environment variable holding a prebuilt distrod binary.
const BinEnv = "DISTROD_BIN"

// buildTimeout bounds `go build ./cmd/distrod` (a cold module cache downloads
// the root module's dependencies).
const buildTimeout = 5 * time.Minute

var (
	binOnce sync.Once
	binPath string
	binErr  error

	tempOnce sync.Once
	tempRoot string
	tempErr  error
)

// TempRoot is a directory shared by the whole test binary. Main removes it
// at exit. Client SDK goroutines that outlive their test (the v1 SDK has no
// Close) may keep writing below it, which is why per-client directories live
// here rather than in t.TempDir (whose cleanup would fail on such writes).
func TempRoot() (string, error) {
	tempOnce.Do(func() {
		tempRoot, tempErr = os.MkdirTemp("", "distro-compat-")
	})
	return tempRoot, tempErr
}

// TempDir makes a fresh directory below TempRoot whose name starts with prefix.
func TempDir(prefix string) (string, error) {
	root, err := TempRoot()
	if err != nil {
		return "", err
	}
	return os.MkdirTemp(root, sanitize(prefix)+"-")
}

// sanitize turns a test name into something usable in file names.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() > 60 {
		return b.String()[:60]
	}
	return b.String()
}

// RepoRoot finds the repository root: the nearest directory at or above the
// working directory whose go.mod declares RootModule. Tests run in their
// package directory (compat/<pkg>), so this is found by walking up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if mod, err := modulePath(filepath.Join(dir, "go.mod")); err == nil && mod == RootModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod declaring module %s at or above the working directory", RootModule)
		}
		dir = parent
	}
}

func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", errors.New("no module line")
}

// DistrodBin returns the distrod binary: $DISTROD_BIN when set, otherwise a
// binary built once per test binary run into TempRoot.
func DistrodBin() (string, error) {
	binOnce.Do(func() { binPath, binErr = locateOrBuild() })
	return binPath, binErr
}

func locateOrBuild() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return "", fmt.Errorf("%s: %w", BinEnv, err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s=%s is not an executable file", BinEnv, abs)
		}
		return abs, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	tmp, err := TempRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(tmp, "bin", "distrod")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/distrod")
	cmd.Dir = root
	// The root module is built with its own go.mod; never through a go.work
	// that might include this module.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/distrod in %s: %w\n%s", root, err, b)
	}
	return out, nil
}
