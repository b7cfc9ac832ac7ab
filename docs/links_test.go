// Package docs_test keeps the documentation true: every relative link of
// README.md and docs/ resolves inside the repository, docs/architecture.md
// maps every package and the import rules it states hold, and the README's
// commands run as written. The folder holds documents, not code; this
// test-only package is their guard.
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// root is the repository root, seen from this folder.
const root = ".."

// markdownFiles returns README.md and every .md file under docs/, as paths
// relative to the repository root.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list docs: %v", err)
	}
	return files
}

var (
	// inlineLink is [text](target) or ![alt](target "title").
	inlineLink = regexp.MustCompile(`\]\(([^()\s]+)(?:\s+"[^"]*")?\)`)
	// refLink is a reference definition: [name]: target
	refLink = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s+(\S+)`)
	// htmlLink is href="target" or src="target".
	htmlLink  = regexp.MustCompile(`(?:href|src)="([^"]+)"`)
	fence     = regexp.MustCompile("(?ms)^\\s*(```|~~~).*?^\\s*(```|~~~)\\s*$")
	codeSpan  = regexp.MustCompile("`[^`\n]+`")
	heading   = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
	schemeURL = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// links returns the link targets of a markdown text, outside code.
func links(md string) []string {
	md = fence.ReplaceAllString(md, "")
	md = codeSpan.ReplaceAllString(md, "")
	var out []string
	for _, re := range []*regexp.Regexp{inlineLink, refLink, htmlLink} {
		for _, m := range re.FindAllStringSubmatch(md, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// anchors returns the GitHub anchors of a markdown text's headings.
func anchors(md string) map[string]bool {
	md = fence.ReplaceAllString(md, "")
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(md, -1) {
		out[slug(m[1])] = true
	}
	return out
}

// slug is GitHub's anchor of a heading: lower case, spaces to hyphens,
// punctuation dropped.
func slug(h string) string {
	h = strings.ReplaceAll(h, "`", "")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestRelativeLinksResolve checks every relative link of README.md and
// docs/**/*.md: it stays inside the repository, names a file or folder
// that exists, and an #anchor names a heading of the markdown it points to.
func TestRelativeLinksResolve(t *testing.T) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range markdownFiles(t) {
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range links(string(data)) {
			if schemeURL.MatchString(target) || strings.HasPrefix(target, "//") {
				continue // http(s), mailto: not a file of the repository
			}
			checked++
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				if filepath.IsAbs(path) {
					t.Errorf("%s: link %q is absolute; make it relative to the file", file, target)
					continue
				}
				dest = filepath.ToSlash(filepath.Join(filepath.Dir(file), path))
			}
			abs := filepath.Join(absRoot, dest)
			if rel, err := filepath.Rel(absRoot, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				t.Errorf("%s: link %q leaves the repository", file, target)
				continue
			}
			fi, err := os.Stat(abs)
			if err != nil {
				t.Errorf("%s: link %q: %s does not exist", file, target, dest)
				continue
			}
			if anchor == "" || fi.IsDir() || !strings.HasSuffix(dest, ".md") {
				continue
			}
			md, err := os.ReadFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(md))[anchor] {
				t.Errorf("%s: link %q: %s has no heading with anchor #%s", file, target, dest, anchor)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the link extraction is broken")
	}
}

// TestLinkExtraction pins the extractor on the cases the real files use,
// so that a broken regular expression cannot pass the test above vacuously.
func TestLinkExtraction(t *testing.T) {
	md := "See [a](docs/a.md) and [b](../out.md#x).\n[ref]: docs/r.md\n<a href=\"x.html\">x</a>\n" +
		"```sh\n[not](a-link.md)\n```\nand `[no](code.md)`\n![img](pic.png \"title\")\n"
	got := strings.Join(links(md), " ")
	if want := "docs/a.md ../out.md#x pic.png docs/r.md x.html"; got != want {
		t.Errorf("links = %q, want %q", got, want)
	}
	if s := slug("Exploring by hand: `make up` & co."); s != "exploring-by-hand-make-up--co" {
		t.Errorf("slug = %q", s)
	}
}

// TestNothingNamesTheDesignNotes checks that no file of the repository
// names the design notes kept outside it: a clone does not have them.
func TestNothingNamesTheDesignNotes(t *testing.T) {
	outside := "DESIGN" + ".md" // spelled so that this file does not match itself
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "build", "reports", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() > 4<<20 {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), outside) {
			t.Errorf("%s names %s, which is not in the repository; link docs/architecture.md instead", p, outside)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
