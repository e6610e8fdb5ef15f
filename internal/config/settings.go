package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SecretSetting is what Settings records for a setting that holds a
// secret value: only that it is set.
const SecretSetting = "(set)"

// Settings flattens a loaded configuration into dotted keys and
// their values as ferry applies them (defaults filled in, paths resolved):
// "upload.max_chunk_size" = "16MiB", "target.<name>.bucket",
// "watch[<path>].settle" = "5s". Lists are JSON arrays. It reads the
// TOML-tagged, exported fields only, so credentials (kept unexported) are
// never seen; a field of type Secret, or whose key names a secret
// (secret, password, token, credential, without the _env suffix that
// marks the *name* of an environment variable), is recorded as "(set)".
// The audit log stores this map, so nothing secret may ever reach it.
func (c *Config) Settings() map[string]string {
	m := map[string]string{}
	flattenSettings(m, "", reflect.ValueOf(c).Elem())
	for k, s := range m {
		m[k] = RedactText(s) // credentials written into a URL, defensively
	}
	return m
}

var secretType = reflect.TypeOf(Secret(""))

func secretKey(tag string) bool {
	if strings.HasSuffix(tag, "_env") {
		return false
	}
	for _, w := range []string{"secret", "password", "passwd", "token", "credential"} {
		if strings.Contains(tag, w) {
			return true
		}
	}
	return false
}

func flattenSettings(m map[string]string, prefix string, v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		fv := v.Field(i)
		if secretKey(tag) || f.Type == secretType {
			if !fv.IsZero() {
				m[key] = SecretSetting
			}
			continue
		}
		switch {
		case fv.Kind() == reflect.Struct:
			flattenSettings(m, key, fv)
		case fv.Kind() == reflect.Map && fv.Type().Elem().Kind() == reflect.Struct:
			for _, k := range fv.MapKeys() {
				e := fv.MapIndex(k)
				flattenSettings(m, key+"."+k.String(), e)
				if t, ok := e.Interface().(TargetConfig); ok {
					dropInapplicable(m, key+"."+k.String(), t.Type)
				}
			}
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			// [[watch]] entries are named by their path: reordering them
			// changes nothing.
			for j := 0; j < fv.Len(); j++ {
				e := fv.Index(j)
				name := strconv.Itoa(j + 1)
				if p := e.FieldByName("Path"); p.IsValid() && p.Kind() == reflect.String && p.String() != "" {
					name = p.String()
				}
				flattenSettings(m, key+"["+name+"]", e)
			}
		default:
			if s, ok := settingValue(fv); ok {
				m[key] = s
			}
		}
	}
}

// targetOnly are the keys of a [target.NAME] that only one type of target
// has (validation refuses them on the other type): settings of a target
// that do not apply to it are no settings of it.
var targetOnly = map[string]string{
	"endpoint": "s3", "bucket": "s3", "region": "s3", "access_key_env": "s3", "secret_key_env": "s3", "credentials_file": "s3",
	"path": "fs",
}

// dropInapplicable removes from m the settings of the target at prefix
// (of type typ) that apply only to another type.
func dropInapplicable(m map[string]string, prefix, typ string) {
	for key, only := range targetOnly {
		if only != typ {
			delete(m, prefix+"."+key)
		}
	}
}

// settingValue formats one setting; ok is false for an absent one (a nil
// pointer).
func settingValue(v reflect.Value) (string, bool) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", false
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case Duration:
		return time.Duration(x).String(), true
	case fmt.Stringer:
		return x.String(), true
	case string:
		return x, true
	case []string:
		b, _ := json.Marshal(x)
		return string(b), true
	case StringList:
		b, _ := json.Marshal([]string(x))
		return string(b), true
	}
	return fmt.Sprint(v.Interface()), true
}

// ChangedSettings names the settings added, removed or changed from old to
// new, sorted.
func ChangedSettings(old, new map[string]string) []string {
	var keys []string
	for k, v := range new {
		if o, ok := old[k]; !ok || o != v {
			keys = append(keys, k)
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
