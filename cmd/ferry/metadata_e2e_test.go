//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-data/ferry/dataset"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/metadata"
)

// TestMetadataOfSequencerRuns is issue 13's end-to-end case, with the real
// binary, versitygw and generated run folders:
//   - a valid run uploads, its objects and log lines carrying valid;
//   - a run whose sample sheet names a species outside the registered
//     vocabulary is invalid and, under hold, nothing of it is uploaded
//     (ferry dlq list shows it with its finding) until ferry metadata
//     accept, after which it uploads and the audit log holds the reason;
//   - a run whose RunParameters.xml reports a new software version is
//     drift (flagged: it uploads, marked drift);
//   - a run held for a species outside the allowed branch validates once
//     the schema file is edited to allow it: the edit is in the audit log;
//   - exported events carry schema_version and validation_status.
func TestMetadataOfSequencerRuns(t *testing.T) {
	const bucket = "meta"
	srv := testsrv.StartS3(t)
	srv.CreateBucket(t, bucket)
	bin := benchBuild(t)
	dir := t.TempDir()
	watch := filepath.Join(dir, "incoming")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	schema := filepath.Join(dir, "schemas", "sequencing-run.json")
	copyFile(filepath.Join("..", "..", "testdata", "metadata", "schemas", "sequencing-run.json"), schema)
	copyFile(filepath.Join("..", "..", "testdata", "metadata", "ontologies", "ncbitaxon-subset.obo"), filepath.Join(dir, "ontologies", "ncbitaxon-subset.obo"))
	cfg := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[journal]
path = "state/ferry.db"
[log]
file = "logs/ferry.log"
level = "info"
[metrics]
listen = %q
[target.s3]
type = "s3"
endpoint = %q
bucket = %q
access_key_env = "MD_AK"
secret_key_env = "MD_SK"
[[watch]]
path = "incoming"
target = "s3"
settle = "300ms"
complete = "marker:CopyComplete.txt"
metadata = "sequencer"

[metadata.sequencer]
path_template = "{instrument}/{run_id}/**"
sources = ["RunInfo.xml", "RunParameters.xml", "SampleSheet.csv", "*.meta.json"]
schema = "schemas/sequencing-run.json"
drift_fields = ["runparameters.ApplicationVersion"]
on_invalid = "hold"
on_drift = "flag"

[vocabulary.ncbitaxon]
file = "ontologies/ncbitaxon-subset.obo"
`, listen, srv.Endpoint, bucket)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MD_AK="+srv.AccessKey, "MD_SK="+srv.SecretKey)
	ferryCmd := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--config", cfg)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	logText := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "logs", "ferry.log"))
		return string(b)
	}
	run := func(name string, o metadata.ExampleRun, data int) string {
		t.Helper()
		rel := "LH00001/" + name
		d := filepath.Join(watch, "LH00001", name)
		o.RunID = name
		if err := metadata.WriteExampleRun(d, o); err != nil {
			t.Fatal(err)
		}
		for i := range data {
			p := filepath.Join(d, "Data", fmt.Sprintf("L001_%d.cbcl", i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, e2eData(uint64(len(name)*1000+i), 700+i), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return rel
	}
	objects := func(prefix string) []string {
		var out []string
		for k := range e2eList(t, srv, bucket) {
			if strings.HasPrefix(k, prefix) {
				out = append(out, k)
			}
		}
		return out
	}
	head := func(key string) map[string]string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("HeadObject %s: %v", key, err)
		}
		return out.Metadata
	}

	// ferry metadata check, before anything runs: the tool for the people
	// who write schemas.
	valid := run("20261202_LH00001_0042_A22XYZLT3", metadata.ExampleRun{Species: []string{"Homo sapiens", "mouse"}}, 5)
	invalid := run("20261202_LH00001_0043_B22XYZLT3", metadata.ExampleRun{Species: []string{"Homo sapiens", "Unicornus magicus"}}, 5)
	if code, out := ferryCmd("metadata", "check", filepath.Join(watch, filepath.FromSlash(valid))); code != 0 || !strings.Contains(out, "status    valid") ||
		!strings.Contains(out, "RunInfo.xml") || !strings.Contains(out, "@") {
		t.Fatalf("metadata check of the valid run: exit %d\n%s", code, out)
	}
	code, out := ferryCmd("metadata", "check", "--json", filepath.Join(watch, filepath.FromSlash(invalid), "SampleSheet.csv"))
	var chk checkJSON
	if err := json.Unmarshal([]byte(out), &chk); code != 1 || err != nil || chk.Status != "invalid" || len(chk.Findings) == 0 ||
		!strings.Contains(chk.Findings[0].Found, "Unicornus magicus") || !strings.Contains(chk.Findings[0].Field, "Species") {
		t.Fatalf("metadata check of the invalid run: exit %d, %v\n%s", code, err, out)
	}
	if code, out := ferryCmd("metadata", "check", filepath.Join(dir, "schemas")); code != 2 {
		t.Fatalf("metadata check outside every watch: exit %d\n%s", code, out)
	}

	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	// The valid run uploads, its objects marked valid with the schema
	// version; the invalid one does not upload at all.
	testsrv.Eventually(t, 60*time.Second, "the valid run's files to land", func() (bool, string) {
		n := len(objects(valid + "/"))
		return n >= 8, fmt.Sprintf("%d objects\n%s", n, crashTail([]byte(logText()), 4000))
	})
	md := head(valid + "/SampleSheet.csv")
	if md["validation-status"] != "valid" || !strings.HasPrefix(md["schema-version"], "https://facility.example.org/schemas/sequencing-run.json@") {
		t.Fatalf("user metadata of a valid run's object: %v", md)
	}
	// Once the valid run was released, a run of new software is drift:
	// flagged, so it uploads, marked drift.
	drift := run("20261202_LH00001_0044_C22XYZLT3", metadata.ExampleRun{Species: []string{"Mus musculus"}, ApplicationVersion: "2.0.1.30000"}, 3)
	// A run from a fly: a term of the vocabulary, but not a mammal.
	fly := run("20261202_LH00001_0045_D22XYZLT3", metadata.ExampleRun{Species: []string{"Drosophila melanogaster"}}, 3)
	testsrv.Eventually(t, 60*time.Second, "the drifted run's files to land", func() (bool, string) {
		n := len(objects(drift + "/"))
		return n >= 6, fmt.Sprintf("%d objects\n%s", n, crashTail([]byte(logText()), 4000))
	})
	if md := head(drift + "/RunParameters.xml"); md["validation-status"] != "drift" {
		t.Fatalf("user metadata of a drifted run's object: %v", md)
	}
	testsrv.Eventually(t, 30*time.Second, "the fly run to be validated and held", func() (bool, string) {
		code, out := ferryCmd("dlq", "list")
		return code == 0 && strings.Contains(out, fly) && strings.Contains(out, invalid), out
	})
	if n := objects(invalid + "/"); len(n) != 0 {
		t.Fatalf("objects of a held run landed: %v", n)
	}
	if n := objects(fly + "/"); len(n) != 0 {
		t.Fatalf("objects of a held run landed: %v", n)
	}
	_, out = ferryCmd("dlq", "list")
	if !strings.Contains(out, "Unicornus magicus") || !strings.Contains(out, "metadata invalid") {
		t.Fatalf("dlq list does not show the held run with its finding:\n%s", out)
	}
	if code, out := ferryCmd("dataset", "show", invalid); code != 0 || !strings.Contains(out, "metadata  invalid") || !strings.Contains(out, "files held") {
		t.Fatalf("dataset show of the held run: exit %d\n%s", code, out)
	}
	if code, out := ferryCmd("status"); code != 0 || !strings.Contains(out, "datasets, for their metadata") {
		t.Fatalf("status with held runs: exit %d\n%s", code, out)
	}
	// The operator's page lists the held runs with why.
	resp, err := http.Get("http://" + listen + "/held")
	if err != nil {
		t.Fatal(err)
	}
	var held []struct {
		Path     string   `json:"path"`
		Files    int      `json:"files"`
		Status   string   `json:"validation_status"`
		Findings []string `json:"findings"`
	}
	err = json.NewDecoder(resp.Body).Decode(&held)
	resp.Body.Close()
	if err != nil || len(held) != 2 || held[0].Path != invalid || held[0].Files == 0 || held[0].Status != "invalid" ||
		len(held[0].Findings) == 0 || !strings.Contains(held[0].Findings[0], "Unicornus magicus") {
		t.Fatalf("/held = %+v, %v", held, err)
	}

	// The schema is edited to take any animal: the edit is audited and the
	// held fly run validates and uploads; the unicorn stays held.
	b, _ := os.ReadFile(schema)
	edited := bytes.Replace(b, []byte(`"NCBITaxon:40674"`), []byte(`"NCBITaxon:33208"`), 1)
	edited = bytes.Replace(edited, []byte(`"version": "1.0.0"`), []byte(`"version": "1.1.0"`), 1)
	if bytes.Equal(b, edited) {
		t.Fatal("the example schema no longer has the branch this test edits")
	}
	if err := os.WriteFile(schema, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	testsrv.Eventually(t, 60*time.Second, "the fly run to upload after the schema edit", func() (bool, string) {
		n := len(objects(fly + "/"))
		return n >= 6, fmt.Sprintf("%d objects\n%s", n, crashTail([]byte(logText()), 4000))
	})
	if n := objects(invalid + "/"); len(n) != 0 {
		t.Fatalf("the unicorn run landed without an acceptance: %v", n)
	}

	// A person accepts the unicorn run: it uploads, and the audit log says
	// who... why.
	if code, out := ferryCmd("metadata", "accept", invalid); code != 2 {
		t.Fatalf("accept without --reason: exit %d\n%s", code, out)
	}
	if code, out := ferryCmd("metadata", "accept", invalid, "--reason", "species confirmed by the PI (ticket 4711)"); code != 0 || !strings.Contains(out, "queued") {
		t.Fatalf("metadata accept: exit %d\n%s", code, out)
	}
	testsrv.Eventually(t, 60*time.Second, "the accepted run to upload", func() (bool, string) {
		n := len(objects(invalid + "/"))
		return n >= 8, fmt.Sprintf("%d objects\n%s", n, crashTail([]byte(logText()), 4000))
	})
	if md := head(invalid + "/SampleSheet.csv"); md["validation-status"] != "invalid" {
		t.Fatalf("user metadata of an accepted invalid run's object: %v", md)
	}
	if code, out := ferryCmd("metadata", "accept", invalid, "--reason", "again"); code != 1 {
		t.Fatalf("accepting a run no longer held: exit %d\n%s", code, out)
	}

	// The instrument finishes the valid run: its crate carries the
	// metadata, with term IDs.
	os.WriteFile(filepath.Join(watch, filepath.FromSlash(valid), "CopyComplete.txt"), nil, 0o644)
	crateKey := valid + "/" + dataset.CrateName
	testsrv.Eventually(t, 60*time.Second, "the valid run's crate", func() (bool, string) {
		_, ok := e2eList(t, srv, bucket)[crateKey]
		return ok, crashTail([]byte(logText()), 3000)
	})
	crate, _, err := e2eGet(srv, bucket, crateKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"validation_status"`, `"value": "valid"`, `NCBITaxon:9606`, `NCBITaxon:10090`, `#ferry-schema-version`} {
		if !bytes.Contains(crate, []byte(want)) {
			t.Errorf("the crate lacks %s:\n%s", want, crate)
		}
	}
	crateDir := t.TempDir()
	for _, k := range objects(valid + "/") {
		b, _, err := e2eGet(srv, bucket, k)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(crateDir, filepath.FromSlash(strings.TrimPrefix(k, valid+"/")))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testsrv.ValidateCrate(t, crateDir)

	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()

	// The audit log: the rules at start, the edit (with what changed), the
	// acceptance with its reason.
	code, out = ferryCmd("journal", "export", "--log", "audit")
	if code != 0 {
		t.Fatalf("audit export: exit %d\n%s", code, out)
	}
	var rules, accepted int
	var edit string
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
		var r map[string]any
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		switch r["kind"] {
		case "validation_rules_changed":
			rules++
			if d, _ := r["detail"].(string); strings.Contains(d, "version=1.1.0") {
				edit = d
			}
		case "metadata_accepted":
			if d, _ := r["detail"].(string); strings.Contains(d, "ticket 4711") && strings.Contains(d, "invalid") {
				accepted++
			}
		}
	}
	if rules < 2 || !strings.Contains(edit, "x-ferry-under") || accepted != 1 {
		t.Fatalf("audit log: %d rule records (edit %q), %d acceptances\n%s", rules, edit, accepted, out)
	}
	// Exported events carry the stamps.
	code, out = ferryCmd("journal", "export")
	if code != 0 {
		t.Fatalf("export: exit %d", code)
	}
	stamped := map[string]bool{}
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if e["kind"] == "uploaded" {
			if v, _ := e["schema_version"].(string); v != "" {
				stamped[fmt.Sprint(e["validation_status"])] = true
			}
		}
	}
	if !stamped["valid"] || !stamped["drift"] || !stamped["invalid"] {
		t.Fatalf("exported uploaded events' stamps: %v", stamped)
	}
	if code, out := ferryCmd("journal", "verify"); code != 0 {
		t.Fatalf("journal verify: exit %d\n%s", code, out)
	}
	// Log lines about a file carry the stamps too.
	var logged bool
	for _, line := range strings.Split(logText(), "\n") {
		if strings.Contains(line, valid+"/") && strings.Contains(line, `"validation_status":"valid"`) && strings.Contains(line, `"schema_version":"https://`) {
			logged = true
			break
		}
	}
	if !logged {
		t.Fatalf("no log line about a file of the valid run carries its stamps:\n%s", crashTail([]byte(logText()), 4000))
	}
}
