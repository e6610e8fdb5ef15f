package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/dataset"
	"github.com/ferry-data/ferry/internal/testcfg"
)

const datasetBase = `
[target.local]
type = "fs"
path = "archive"

[[watch]]
path = "in"
target = "local"
`

func loadText(t *testing.T, body string, env map[string]string) (*Config, error) {
	t.Helper()
	return Load(testcfg.Write(t, body), testcfg.Env(env))
}

func TestDatasetKeys(t *testing.T) {
	c, err := loadText(t, datasetBase+`dataset = "*/*"
complete = ["illumina", "quiet:2h"]
license = "CC-BY-4.0"
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watch[0]
	if len(w.Conditions()) != 2 || w.Conditions()[0].Kind != dataset.Illumina || w.AfterUpload != "keep" || w.Depth() != 2 {
		t.Fatalf("watch: %+v %v", w, w.Conditions())
	}
	for rel, want := range map[string]string{
		"projA/run1/a.tif":      "projA/run1",
		"projA/run1/sub/deep.x": "projA/run1",
		"projA/run1":            "", // a file at the datasets' depth is not inside one
		"top.txt":               "",
	} {
		if got := w.DatasetOf(rel); got != want {
			t.Errorf("DatasetOf(%q) = %q, want %q", rel, got, want)
		}
	}
	if s := c.Settings(); s["watch["+w.Path+"].complete"] != `["illumina","quiet:2h"]` {
		t.Errorf("settings: %v", s)
	}

	c, err = loadText(t, datasetBase+"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"reclaim\"\n", nil)
	if err != nil || c.Watch[0].ReclaimPercent() != 15 || !c.Watch[0].Deletes() {
		t.Fatalf("reclaim default: %v %+v", err, c)
	}
	c, err = loadText(t, datasetBase+"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"reclaim\"\nreclaim_free_below = \"7.5%\"\n", nil)
	if err != nil || c.Watch[0].ReclaimPercent() != 7.5 {
		t.Fatalf("reclaim 7.5%%: %v", err)
	}
	c, err = loadText(t, datasetBase+"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"delete\"\n", nil)
	if err != nil || c.Watch[0].VerifyBeforeDelete != "head" {
		t.Fatalf("verify_before_delete default: %v %+v", err, c.Watch[0])
	}
	c, err = loadText(t, datasetBase+"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"move:done\"\n", nil)
	if err != nil || !c.Watch[0].Deletes() || c.Watch[0].MoveDir() != filepath.Join(filepath.Dir(c.File()), "done") {
		t.Fatalf("move:done: %v %q", err, c.Watch[0].MoveDir())
	}
	// One string is a list of one; the licence defaults to all rights reserved.
	c, err = loadText(t, datasetBase+"dataset = \"run-*\"\ncomplete = \"marker:.done\"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Watch[0]; len(w.Conditions()) != 1 || w.License != dataset.DefaultLicense || w.DatasetOf("run-7/x") != "run-7" || w.DatasetOf("other/x") != "" {
		t.Fatalf("watch: %+v", w)
	}
	// No datasets: files only, as before.
	c, err = loadText(t, datasetBase, nil)
	if err != nil || c.Watch[0].Depth() != 0 || c.Watch[0].DatasetOf("run1/a") != "" {
		t.Fatalf("no dataset: %v %+v", err, c)
	}
}

func TestDatasetKeysRefused(t *testing.T) {
	cases := []struct{ body, key, msg string }{
		{`complete = "illumina"`, "watch[1].complete", "applies only to a watch with datasets"},
		{`license = "MIT"`, "watch[1].license", "applies only to a watch with datasets"},
		{"dataset = \"*\"", "watch[1].complete", "required with dataset"},
		{"dataset = \"**\"\ncomplete = \"illumina\"", "watch[1].dataset", "fixed depth"},
		{"dataset = \"/abs\"\ncomplete = \"illumina\"", "watch[1].dataset", "relative folder pattern"},
		{"dataset = \"a/../b\"\ncomplete = \"illumina\"", "watch[1].dataset", "relative folder pattern"},
		{"dataset = \"[\"\ncomplete = \"illumina\"", "watch[1].dataset", "relative folder pattern"},
		{"dataset = '*\\x'\ncomplete = \"illumina\"", "watch[1].dataset", "with /"},
		{"dataset = \"*\"\ncomplete = \"quiet:soon\"", "watch[1].complete", "needs a duration"},
		{"dataset = \"*\"\ncomplete = [\"illumina\", 3]", "", "not a string"},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nlicense = \"not a licence\"", "watch[1].license", "SPDX"},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nreclaim_free_below = \"15%\"", "watch[1].reclaim_free_below", "only with after_upload"},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"reclaim\"\nreclaim_free_below = \"15\"", "watch[1].reclaim_free_below", "percentage"},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"reclaim\"\nreclaim_free_below = \"100%\"", "watch[1].reclaim_free_below", "between 1% and 99%"},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"move:\"", "watch[1].after_upload", "needs a folder"},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nverify_before_delete = \"readback\"", "watch[1].verify_before_delete", "applies only when source files are deleted"},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"delete\"\nverify_before_delete = \"trust\"", "watch[1].verify_before_delete", "must be \"head\" or \"readback\""},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"move:in/done\"", "watch[1].after_upload", "overlap"},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"move:.\"", "watch[1].after_upload", "overlap"},
		{"dataset = \"*\"\ncomplete = \"illumina\"\nafter_upload = \"shred\"", "watch[1].after_upload", "must be \"keep\", \"delete\", \"move:DIR\" or \"reclaim\""},
	}
	for _, tc := range cases {
		t.Run(tc.body, func(t *testing.T) {
			_, err := loadText(t, datasetBase+tc.body+"\n", nil)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), "ferry.toml:") {
				t.Fatalf("err = %v; want %s: %s, with file:line", err, tc.key, tc.msg)
			}
		})
	}
}

func TestNotifyKeys(t *testing.T) {
	body := datasetBase + `dataset = "*"
complete = "illumina"

[[notify]]
url = "https://lims.example.org/hooks/ferry?token=TOPSECRET"
events = ["dataset_complete", "dataset_failed"]
secret_env = "HOOK_SECRET"

[[notify]]
url = "http://10.0.0.5:8080/hook"
`
	c, err := loadText(t, body, map[string]string{"HOOK_SECRET": "hmac-key"})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Notify
	if len(n) != 2 || n[0].Secret().Reveal() != "hmac-key" || !n[0].Wants("dataset_failed") || n[0].Wants("file_failed") || len(n[1].Events) != 3 {
		t.Fatalf("notify: %+v", n)
	}
	if n[0].URL.Reveal() != "https://lims.example.org/hooks/ferry?token=TOPSECRET" {
		t.Fatal("the sender needs the whole URL")
	}
	// Neither the token nor the secret reaches the settings (the audit log),
	// the endpoint's id (the journal), or a formatted config.
	all := fmt.Sprintf("%v %+v %#v %s %s", c.Settings(), n, n, n[0].ID(), n[1].ID())
	for _, secret := range []string{"TOPSECRET", "hmac-key"} {
		if strings.Contains(all, secret) {
			t.Fatalf("%s leaked: %s", secret, all)
		}
	}
	if n[0].ID() == n[1].ID() || !strings.HasPrefix(n[0].ID(), "https://lims.example.org/hooks/ferry") {
		t.Fatalf("ids: %q %q", n[0].ID(), n[1].ID())
	}

	refused := []struct{ body, key, msg string }{
		{"[[notify]]\nevents = [\"dataset_complete\"]\n", "notify[1].url", "required"},
		{"[[notify]]\nurl = \"ftp://x/y\"\n", "notify[1].url", "http"},
		{"[[notify]]\nurl = \"https://u:pw@x/y\"\n", "notify[1].url", "credentials in the URL"},
		{"[[notify]]\nurl = \"https://x/y\"\nevents = [\"dataset_done\"]\n", "notify[1].events", "unknown event"},
		{"[[notify]]\nurl = \"https://x/y\"\nsecret_env = \"MISSING\"\n", "notify[1].secret_env", "MISSING is not set"},
		{"[[notify]]\nurl = \"https://x/y\"\nsecret = \"inline\"\n", "notify[1].secret", "unknown key"},
	}
	for _, tc := range refused {
		_, err := loadText(t, datasetBase+tc.body, nil)
		var errs Errors
		if err == nil || !errors.As(err, &errs) || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: err = %v; want %s: %s", tc.body, err, tc.key, tc.msg)
			continue
		}
		if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), ":0:") {
			t.Errorf("%q: %v (credentials echoed, or no line)", tc.body, err)
		}
	}
}
