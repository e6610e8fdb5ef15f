package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Names an s3 target's credentials are read under when it has a
// credentials_file and does not name them (access_key_env, secret_key_env).
const (
	DefaultAccessKeyName = "AWS_ACCESS_KEY_ID"
	DefaultSecretKeyName = "AWS_SECRET_ACCESS_KEY"
)

var credNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// readCredentialsFile reads a target's credentials_file: NAME=VALUE lines,
// blank lines and # comments. Problems are reported at the credentials
// file's line (or at the key's line in the configuration when the file
// cannot be used at all), never with a value. A file that others may read
// is refused (credentialsFileOpen, per platform).
func readCredentialsFile(v *checker, tbl, path string) map[string]string {
	data, err := readCredentials(path)
	if err != nil {
		v.badKey(tbl, "credentials_file", "%v", err)
		return nil
	}
	values := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF") // a BOM, as Notepad writes
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok:
			v.errs = append(v.errs, &Error{File: path, Line: n, Msg: "expected NAME=VALUE (the value is not shown)"})
		case !credNameRE.MatchString(name):
			v.errs = append(v.errs, &Error{File: path, Line: n, Msg: "the name before = must be letters, digits and _ (such as AWS_SECRET_ACCESS_KEY)"})
		case values[name] != "":
			v.errs = append(v.errs, &Error{File: path, Line: n, Key: name, Msg: "set twice"})
		default:
			values[name] = unquote(strings.TrimSpace(value))
		}
	}
	if err := sc.Err(); err != nil {
		v.badKey(tbl, "credentials_file", "cannot read %s: %v", path, err)
	}
	return values
}

// unquote removes one pair of matching quotes around a value.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// readCredentials reads the file after checking who may read it.
func readCredentials(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if msg := credentialsFileOpen(path, fi); msg != "" {
		return nil, fmt.Errorf("%s", msg)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	return data, nil
}
