// Package fssink is the "fs" target: it stores objects as files under a
// root folder (a local disk or a NAS mount), with the same relative layout
// as their keys.
//
// Every object is written atomically: the bytes go to a temporary file in
// the destination folder, are fsynced, renamed into place, and the folder is
// fsynced, so a reader never sees half an object.
//
// ferry's own files live where no object key can: under ROOT/_ferry/fs/
// (the keys there are refused) and ROOT/.ferry-uploads/:
//
//	ROOT/<key>                      the objects, nothing else beside them
//	ROOT/_ferry/fs/sha256/<key>     each object's SHA-256, as sha256sum
//	                                writes it: "<hex>  <key>\n"
//	ROOT/_ferry/fs/tmp/<host>/      temporary files of puts in progress
//	ROOT/_ferry/fs/layout           "2": the archive is in this layout
//	ROOT/.ferry-uploads/<id>/       staged multipart uploads
//
// (A sidecar rather than an extended attribute because SMB and NFS shares
// and Windows do not carry xattrs reliably; under _ferry/fs/ rather than
// beside the object so that a source file named like another's plus
// ".sha256" is an object like any other. From ROOT,
// `find _ferry/fs/sha256 -type f -exec cat {} + | sha256sum -c` verifies
// the whole archive without ferry.) Earlier versions kept the sidecar at
// <key>.sha256 and temporary files beside the objects: Stat still reads
// such a sidecar while the new one is missing, and Migrate moves those it
// can prove are ferry's.
//
// Multipart uploads are staged under ROOT/.ferry-uploads/<id>/: the parts
// are written at their offsets into one file, each checked against its
// SHA-256 first, and Complete renames the finished file into place.
package fssink

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-data/ferry/internal/pace"
	"github.com/ferry-data/ferry/uploader/sink"
)

// UploadsDir is the folder under the root where multipart uploads are staged.
const UploadsDir = ".ferry-uploads"

// OwnDir is the folder under the root, in ferry's reserved _ferry/
// namespace, that holds the fs target's own files: no key may lie under it.
const OwnDir = "_ferry/fs"

// SumsDir holds the hash sidecars: the one of KEY is SumsDir/KEY.
const SumsDir = OwnDir + "/sha256"

// TempDir holds the temporary files of puts, one folder per host.
const TempDir = OwnDir + "/tmp"

// TempPrefix starts the name of every temporary file.
const TempPrefix = ".ferry-tmp-"

// LayoutFile marks an archive whose layout is this one (see Migrate).
const LayoutFile = OwnDir + "/layout"

// Layout is the layout's number, in LayoutFile.
const Layout = "2"

// LegacySidecarSuffix named the sidecar of KEY, KEY.sha256, in layout 1.
const LegacySidecarSuffix = ".sha256"

// Sink stores objects under a root folder.
type Sink struct {
	root string
	mode fs.FileMode // of every file written (objects, sidecars, staging)
	tmp  string      // this host's folder of temporary files
	host string
	made time.Time // uploads staged by this host before are an earlier process's
}

// DefaultFileMode is the mode of the files the fs target writes, unless
// its file_mode says otherwise.
const DefaultFileMode fs.FileMode = 0o644

var _ sink.Sink = (*Sink)(nil)

// New returns a sink rooted at root, creating the folder if needed.
func New(root string) (*Sink, error) { return NewMode(root, DefaultFileMode) }

// NewMode is New with the mode of every file written, single or multipart
// (the target's file_mode; 0 means DefaultFileMode). It is set explicitly,
// whatever the process's umask.
func NewMode(root string, mode fs.FileMode) (*Sink, error) {
	if mode == 0 {
		mode = DefaultFileMode
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("fs target %s: %w", root, err)
	}
	h := host()
	return &Sink{root: root, mode: mode.Perm(), tmp: filepath.Join(root, filepath.FromSlash(TempDir), h), host: h, made: time.Now()}, nil
}

// host names this host's folder of temporary files: the host name with
// anything but the characters of a DNS name replaced by '_'.
func host() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "unknown-host"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, h)
}

// Own reports whether key lies in ferry's own part of an fs target
// (_ferry/fs/ or .ferry-uploads/, in any letter case: shares and Windows
// fold it), where no object may go.
func Own(key string) bool {
	first, rest, _ := strings.Cut(key, "/")
	if strings.EqualFold(first, UploadsDir) {
		return true
	}
	second, _, _ := strings.Cut(rest, "/")
	return strings.EqualFold(first+"/"+second, OwnDir)
}

// MinPartSize is 1: a folder takes parts of any size.
func (s *Sink) MinPartSize() int64 { return 1 }

// MaxParts is S3's limit, so that an archive moves between targets alike.
func (s *Sink) MaxParts() int { return sink.DefaultMaxParts }

// classify turns an OS error into a sink error: permission problems need a
// person, and a destination path the target cannot hold (fileErrnos: a file
// where a folder is needed, a name too long) is permanent for that file;
// anything else (a full disk, a read-only or unmounted share, an I/O error)
// is a state of the target that may pass.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return sink.NewPermanent(op, err)
	}
	if IsFileError(err) {
		return &sink.Error{Class: sink.Permanent, Op: op, Code: "InvalidPath", Err: err}
	}
	return sink.NewTransient(op, err)
}

// classifyDest is classify for an error met writing dest, a path under the
// root: where the errno is ambiguous (on Windows "path not found" is both a
// file where a folder is needed and a share that is gone), destReason looks
// at the destination and, when it proves the path alone is at fault, the
// error is permanent for that file with that reason.
func (s *Sink) classifyDest(op, dest string, err error) error {
	if err == nil {
		return nil
	}
	if !aboutBytes(err) {
		if reason := destReason(s.root, dest, err); reason != nil {
			return &sink.Error{Class: sink.Permanent, Op: op, Code: "InvalidPath", Err: reason}
		}
	}
	return classify(op, err)
}

// IsFileError reports whether err says that one destination path cannot be
// written on this filesystem (see fileErrnos), as opposed to a failure of
// the target as a whole.
func IsFileError(err error) bool {
	if aboutBytes(err) {
		return false
	}
	for _, e := range fileErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// aboutBytes reports whether err is about a file's bytes, not its name: a
// state of the target (e.g. a share without fsync).
func aboutBytes(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && (pe.Op == "sync" || pe.Op == "write" || pe.Op == "read" || pe.Op == "close")
}

func (s *Sink) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || key == ".." || strings.HasPrefix(key, "../") ||
		strings.Contains(key, "\\") {
		return "", sink.NewPermanent("key", fmt.Errorf("key %q is not a clean relative path", key))
	}
	if Own(key) {
		return "", sink.NewPermanent("key", fmt.Errorf("key %q is inside the fs target's own folders (%s/, %s/)", key, OwnDir, UploadsDir))
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// sumPath is where the sidecar of key goes.
func (s *Sink) sumPath(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(SumsDir), filepath.FromSlash(key))
}

func checkSum(op string, body []byte, want sink.Digest) error {
	if got := sink.Digest(sha256.Sum256(body)); got != want {
		return &sink.Error{Class: sink.Permanent, Op: op, Code: "BadDigest",
			Err: fmt.Errorf("%w: received %s, expected %s", sink.ErrChecksum, got.Hex(), want.Hex())}
	}
	return nil
}

// Put writes body under key atomically, with its hash sidecar.
func (s *Sink) Put(ctx context.Context, key string, body []byte, sum sink.Digest, ifAbsent bool) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := checkSum("Put", body, sum); err != nil {
		return err
	}
	if err := pace.From(ctx).Wait(ctx, len(body)); err != nil {
		return sink.NewTransient("Put", err)
	}
	if err := s.sidecarBefore(p, key, sum.Hex(), ifAbsent); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return existsError("Put", key)
		}
		return s.classifyDest("Put", p, err)
	}
	if err := s.writeAtomic(p, body, ifAbsent); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return existsError("Put", key)
		}
		return s.classifyDest("Put", p, err)
	}
	return s.classifyDest("Put", s.sumPath(key), s.sidecarAfter(key, sum.Hex(), ifAbsent))
}

// sidecarBefore and sidecarAfter write the sidecar of key in the order that
// a kill between it and the placing of the object p never leaves a hash
// that vouches for other bytes, nor (for a create-only write) an object
// without its hash, which the next attempt would take for someone else's.
// Create-only: the sidecar goes first (p is reported as existing, with
// fs.ErrExist, before its sidecar is touched), since a sidecar without its
// object is nothing: Stat looks at the object first. Overwriting: the
// object goes first, since until its new sidecar is written the old one
// tells the next attempt that the target does not hold the new content.
func (s *Sink) sidecarBefore(p, key, hexSum string, ifAbsent bool) error {
	if !ifAbsent {
		return nil
	}
	if _, err := os.Lstat(p); err == nil {
		return fs.ErrExist
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.writeSidecar(key, hexSum)
}

func (s *Sink) sidecarAfter(key, hexSum string, ifAbsent bool) error {
	if ifAbsent {
		return nil
	}
	return s.writeSidecar(key, hexSum)
}

// writeSidecar writes the sidecar of key: one line of sha256sum's format,
// naming the object by its path from the root.
func (s *Sink) writeSidecar(key, hexSum string) error {
	return s.writeAtomic(s.sumPath(key), []byte(sidecarLine(hexSum, key)), false)
}

func sidecarLine(hexSum, name string) string { return hexSum + "  " + name + "\n" }

func existsError(op, key string) error {
	return &sink.Error{Class: sink.Permanent, Op: op, Code: "PreconditionFailed", Err: fmt.Errorf("%s: %w", key, sink.ErrExists)}
}

// writeAtomic writes data to a temporary file in this host's folder of
// temporary files, fsyncs it, moves it to p and fsyncs p's folder. With
// ifAbsent an existing p is left alone and the error matches fs.ErrExist.
// (The temporary file is in ferry's own folder rather than beside p so that
// a kill leaves it where SweepTemp finds it, never among the objects; the
// move stays a rename within the target's filesystem, as for multipart.)
func (s *Sink) writeAtomic(p string, data []byte, ifAbsent bool) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(s.tmp, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.tmp, TempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = setMode(f.Chmod(s.mode)) // CreateTemp makes 0600
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp, p, ifAbsent)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// place moves a finished temporary file to p: a rename, or, when p must not
// exist, a hard link (which fails if p exists, atomically) and the removal
// of the temporary name. Where links are not supported (some shares), it
// checks and renames: safe against ferry itself, not against another writer.
func place(tmp, p string, ifAbsent bool) error {
	if !ifAbsent {
		return os.Rename(tmp, p)
	}
	err := os.Link(tmp, p)
	if err == nil {
		return os.Remove(tmp)
	}
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(p); serr == nil {
		return fs.ErrExist
	}
	return os.Rename(tmp, p)
}

func (s *Sink) uploadDir(uploadID string) (string, error) {
	if len(uploadID) != 32 || strings.Trim(uploadID, "0123456789abcdef") != "" {
		return "", sink.NewPermanent("upload", fmt.Errorf("invalid upload id %q", uploadID))
	}
	return filepath.Join(s.root, UploadsDir, uploadID), nil
}

// CreateMultipart stages a new upload.
func (s *Sink) CreateMultipart(ctx context.Context, key string, size int64) (string, error) {
	if _, err := s.path(key); err != nil {
		return "", err
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	dir, _ := s.uploadDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", classify("CreateMultipart", err)
	}
	meta := fmt.Sprintf("key=%s\nsize=%d\nhost=%s\n", strconv.Quote(key), size, s.host)
	if err := s.writeAtomic(filepath.Join(dir, "meta"), []byte(meta), false); err != nil {
		return "", classify("CreateMultipart", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", classify("CreateMultipart", err)
	}
	if err := f.Close(); err != nil {
		return "", classify("CreateMultipart", err)
	}
	return id, nil
}

type upload struct {
	key  string
	size int64
	host string // that staged it ("" before ferry recorded it)
}

func readMeta(dir string) (upload, error) {
	b, err := os.ReadFile(filepath.Join(dir, "meta"))
	if err != nil {
		return upload{}, err
	}
	var u upload
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "key":
			u.key, err = strconv.Unquote(v)
		case "size":
			u.size, err = strconv.ParseInt(v, 10, 64)
		case "host":
			u.host = v
		}
		// (An upload staged by an earlier ferry also has sha256=: the
		// whole-object hash now comes with CompleteMultipart.)
		if err != nil {
			return upload{}, fmt.Errorf("%s: bad meta: %w", dir, err)
		}
	}
	return u, nil
}

func (s *Sink) open(op, key, uploadID string) (string, upload, error) {
	dir, err := s.uploadDir(uploadID)
	if err == nil {
		var u upload
		u, err = readMeta(dir)
		if err == nil {
			if u.key != key {
				return "", upload{}, sink.NewPermanent(op, fmt.Errorf("upload %s is for key %q, not %q", uploadID, u.key, key))
			}
			return dir, u, nil
		}
	}
	var bad *sink.Error
	if errors.As(err, &bad) || errors.Is(err, fs.ErrNotExist) {
		// Never issued here, or finished: either way there is no such upload.
		return "", upload{}, &sink.Error{Class: sink.Permanent, Op: op, Code: "NoSuchUpload", Err: fmt.Errorf("upload %s: %w", uploadID, sink.ErrNotFound)}
	}
	return "", upload{}, classify(op, err)
}

// UploadPart checks the part against its hash and writes it at its offset.
func (s *Sink) UploadPart(ctx context.Context, key, uploadID string, p sink.Part, body []byte) (string, error) {
	dir, u, err := s.open("UploadPart", key, uploadID)
	if err != nil {
		return "", err
	}
	if int64(len(body)) != p.Size || p.Offset < 0 || p.Offset+p.Size > u.size || p.Number < 1 {
		return "", sink.NewPermanent("UploadPart", fmt.Errorf("part %d (offset %d, %d bytes, body %d) does not fit an object of %d bytes",
			p.Number, p.Offset, p.Size, len(body), u.size))
	}
	if err := checkSum("UploadPart", body, p.SHA256); err != nil {
		return "", err
	}
	if err := pace.From(ctx).Wait(ctx, len(body)); err != nil {
		return "", sink.NewTransient("UploadPart", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_WRONLY, 0)
	if err != nil {
		return "", classify("UploadPart", err)
	}
	_, err = f.WriteAt(body, p.Offset)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", classify("UploadPart", err)
	}
	etag := p.SHA256.Hex()
	rec := fmt.Sprintf("%d %d %s\n", p.Offset, p.Size, etag)
	if err := s.writeAtomic(filepath.Join(dir, fmt.Sprintf("part-%05d", p.Number)), []byte(rec), false); err != nil {
		return "", classify("UploadPart", err)
	}
	return etag, nil
}

// CompleteMultipart checks that the parts were all received and cover the
// object, then moves it into place.
func (s *Sink) CompleteMultipart(ctx context.Context, key, uploadID string, parts []sink.Part, sum sink.Digest, ifAbsent bool) error {
	dir, u, err := s.open("CompleteMultipart", key, uploadID)
	if err != nil {
		return err
	}
	final, err := s.path(key)
	if err != nil {
		return err
	}
	var next int64
	for i, p := range parts {
		if p.Number != i+1 || p.Offset != next {
			return sink.NewPermanent("CompleteMultipart", fmt.Errorf("part %d at offset %d out of order (expected part %d at %d)", p.Number, p.Offset, i+1, next))
		}
		rec, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("part-%05d", p.Number)))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return sink.NewPermanent("CompleteMultipart", fmt.Errorf("part %d was never uploaded", p.Number))
			}
			return classify("CompleteMultipart", err)
		}
		if want := fmt.Sprintf("%d %d %s\n", p.Offset, p.Size, p.ETag); string(rec) != want {
			return sink.NewPermanent("CompleteMultipart", fmt.Errorf("part %d: stored as %q, completing with %q", p.Number, strings.TrimSpace(string(rec)), strings.TrimSpace(want)))
		}
		next += p.Size
	}
	if next != u.size {
		return sink.NewPermanent("CompleteMultipart", fmt.Errorf("parts cover %d bytes of %d", next, u.size))
	}
	if err := ctx.Err(); err != nil {
		return sink.NewTransient("CompleteMultipart", err)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return s.classifyDest("CompleteMultipart", final, err)
	}
	if err := setMode(os.Chmod(filepath.Join(dir, "data"), s.mode)); err != nil {
		return classify("CompleteMultipart", err)
	}
	if err := s.sidecarBefore(final, key, sum.Hex(), ifAbsent); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return existsError("CompleteMultipart", key)
		}
		return s.classifyDest("CompleteMultipart", final, err)
	}
	if err := place(filepath.Join(dir, "data"), final, ifAbsent); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return existsError("CompleteMultipart", key)
		}
		return s.classifyDest("CompleteMultipart", final, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return classify("CompleteMultipart", err)
	}
	if err := s.sidecarAfter(key, sum.Hex(), ifAbsent); err != nil {
		return s.classifyDest("CompleteMultipart", s.sumPath(key), err)
	}
	return classify("CompleteMultipart", removeUpload(dir))
}

// ListParts reports the parts received so far, from their records.
func (s *Sink) ListParts(ctx context.Context, key, uploadID string) ([]sink.Part, error) {
	dir, _, err := s.open("ListParts", key, uploadID)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, classify("ListParts", err)
	}
	var parts []sink.Part
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), "part-")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		rec, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, classify("ListParts", err)
		}
		p := sink.Part{Number: n}
		if _, err := fmt.Sscanf(string(rec), "%d %d %s\n", &p.Offset, &p.Size, &p.ETag); err != nil {
			return nil, sink.NewPermanent("ListParts", fmt.Errorf("%s: bad part record %q", e.Name(), rec))
		}
		if p.SHA256, err = sink.ParseDigest(p.ETag); err != nil {
			return nil, sink.NewPermanent("ListParts", fmt.Errorf("%s: %w", e.Name(), err))
		}
		parts = append(parts, p)
	}
	sort.Slice(parts, func(a, b int) bool { return parts[a].Number < parts[b].Number })
	return parts, nil
}

// ListUploads reports the staged uploads whose key starts with prefix; an
// upload's start is its staging folder's modification time. One this host
// staged before the sink was made is Stale: an earlier process's.
func (s *Sink) ListUploads(ctx context.Context, prefix string) ([]sink.Upload, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, UploadsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, classify("ListUploads", err)
	}
	var ups []sink.Upload
	for _, e := range ents {
		dir, err := s.uploadDir(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		u, err := readMeta(dir)
		if err != nil {
			continue // vanished meanwhile, or not ours
		}
		fi, err := e.Info()
		if err != nil || !strings.HasPrefix(u.key, prefix) {
			continue
		}
		ups = append(ups, sink.Upload{Key: u.key, ID: e.Name(), Initiated: fi.ModTime(),
			Stale: u.host == s.host && fi.ModTime().Before(s.made)})
	}
	return ups, nil
}

// AbortMultipart discards a staged upload; an unknown one is no error.
func (s *Sink) AbortMultipart(ctx context.Context, key, uploadID string) error {
	dir, err := s.uploadDir(uploadID)
	if err != nil {
		return nil // not an id this sink made: there is nothing to discard
	}
	return classify("AbortMultipart", removeUpload(dir))
}

// Stat reports the object's size and the hash in its sidecar.
func (s *Sink) Stat(ctx context.Context, key string) (sink.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return sink.Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return sink.Info{}, fmt.Errorf("%s: %w", key, sink.ErrNotFound)
	}
	if err != nil {
		return sink.Info{}, classify("Stat", err)
	}
	if !fi.Mode().IsRegular() {
		return sink.Info{}, sink.NewPermanent("Stat", fmt.Errorf("%s is not a regular file", p))
	}
	info := sink.Info{Size: fi.Size()}
	b, err := os.ReadFile(s.sumPath(key))
	switch {
	case err == nil:
		if h, _, ok := strings.Cut(string(b), " "); ok {
			info.SHA256 = strings.ToLower(h)
		}
	case errors.Is(err, fs.ErrNotExist):
		// An archive of the earlier layout, not migrated yet: its sidecar
		// beside the object, if it is one (a line naming the object).
		info.SHA256, err = legacySum(p)
		if err != nil {
			return sink.Info{}, classify("Stat", err)
		}
	default:
		return sink.Info{}, classify("Stat", err)
	}
	return info, nil
}

// legacySum reads the sidecar layout 1 wrote beside the object at p: the
// lowercase hex SHA-256 it holds, or "" when there is none of that form.
func legacySum(p string) (string, error) {
	f, err := os.Open(p + LegacySidecarSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > 64+2+4096+1 {
		return "", err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "", err
	}
	return parseLegacy(string(b), filepath.Base(p)), nil
}

// parseLegacy returns the hash of a layout-1 sidecar line "<hex>  <name>\n"
// naming name, or "".
func parseLegacy(line, name string) string {
	h, rest, ok := strings.Cut(line, "  ")
	if !ok || rest != name+"\n" || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return ""
	}
	return h
}

// removeUpload deletes a staging folder, which holds only files (meta, data,
// part-N). Entry by entry rather than os.RemoveAll, which some Windows
// emulations (Wine) do not support. A missing folder is not an error.
func removeUpload(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// List reports the objects whose key starts with prefix, leaving out
// ferry's own folders (_ferry/fs/, .ferry-uploads/).
func (s *Sink) List(ctx context.Context, prefix string) ([]string, error) {
	// Only the folder the prefix ends in (and below) can hold its keys.
	dir := path.Dir(prefix + "x")
	if strings.Contains(prefix, "\\") || path.IsAbs(prefix) || strings.HasPrefix(path.Clean(dir), "..") {
		return nil, sink.NewPermanent("List", fmt.Errorf("prefix %q is not a relative path", prefix))
	}
	start := filepath.Join(s.root, filepath.FromSlash(dir))
	var keys []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key != "." && Own(key+"/x") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		return nil, classify("List", err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Get reads the object under key.
func (s *Sink) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", key, sink.ErrNotFound)
	}
	if err != nil {
		return nil, classify("Get", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, sink.NewPermanent("Get", fmt.Errorf("%s is not a regular file", p))
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, classify("Get", err)
	}
	if int64(len(b)) > max {
		return nil, sink.NewPermanent("Get", fmt.Errorf("%s: more than %d bytes: %w", key, max, sink.ErrTooLarge))
	}
	return b, nil
}

// setMode passes the error of a chmod, except where the target does not let
// modes be set (a share mounted without permissions): the file keeps the
// share's mode, as any other writer's would.
func setMode(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}
