package config

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "quasipaa.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestDefaultIsValid(t *testing.T) {
	require.NoError(t, Default().Validate())
}

func TestDefaultValues(t *testing.T) {
	c := Default()
	assert.Equal(t, ":1935", c.RTMP.Listen)
	assert.Equal(t, 60000, c.RTMP.ChunkSize)
	assert.Equal(t, 16777216, c.RTMP.MaxMessageSize)
	assert.Equal(t, 10*time.Second, c.RTMP.HandshakeTimeout)
	assert.Equal(t, ":8080", c.HTTP.Listen)
	assert.Equal(t, "*", c.HTTP.CORSOrigin)
	assert.Equal(t, "./data", c.Storage.Dir)
	assert.Equal(t, S3{PathStyle: true}, c.Storage.S3, "local disk by default")
	assert.Equal(t, Log{Level: "info", Format: "text"}, c.Log)
	assert.Equal(t, Hub{
		GOPCache: true, QueueSize: 1024, PublisherGrace: 5 * time.Second, Conflict: "refuse",
		MaxDrops: 8, DropWindow: 30 * time.Second, WriteTimeout: 10 * time.Second, WriteMerge: 0,
	}, c.Hub)
}

// leafPaths returns the dotted paths of every scalar in a YAML mapping tree,
// and fails the test for a key without a comment.
func leafPaths(t *testing.T, n *yaml.Node, prefix string) []string {
	t.Helper()
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		if v.Kind == yaml.MappingNode {
			out = append(out, leafPaths(t, v, path)...)
			continue
		}
		assert.True(t, k.HeadComment != "" || k.LineComment != "" || v.LineComment != "",
			"%s has no comment in DefaultYAML", path)
		out = append(out, path)
	}
	return out
}

func TestDefaultYAMLMatchesDefault(t *testing.T) {
	// Every field of Config appears in DefaultYAML, each with a comment.
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(DefaultYAML()), &doc))
	got := leafPaths(t, doc.Content[0], "")
	var want []string
	for _, k := range Keys() {
		want = append(want, k.Path)
	}
	assert.Equal(t, want, got, "DefaultYAML keys (in order) must be exactly the Config fields")

	// Decoding it over a zero Config yields exactly Default(): no key is
	// missing and no value differs.
	var zero Config
	require.NoError(t, zero.decodeYAML(strings.NewReader(DefaultYAML())))
	assert.Equal(t, Default(), &zero)

	// And through the public path.
	c, err := Load(writeFile(t, DefaultYAML()), nil)
	require.NoError(t, err)
	assert.Equal(t, Default(), c)
}

func TestKeysCoverEveryField(t *testing.T) {
	// Count the leaves of Config by reflection independently of Keys().
	var count func(reflect.Type) int
	count = func(t reflect.Type) int {
		n := 0
		for i := 0; i < t.NumField(); i++ {
			ft := t.Field(i).Type
			if ft.Kind() == reflect.Struct && ft != durationType {
				n += count(ft)
			} else {
				n++
			}
		}
		return n
	}
	assert.Equal(t, count(reflect.TypeOf(Config{})), len(Keys()))
	for _, k := range Keys() {
		assert.Regexp(t, `^[a-z]+(\.[a-z][a-z0-9_]*)*$`, k.Path)
		assert.Equal(t, k.Env, EnvName(k.Path))
	}
}

func TestEnvNames(t *testing.T) {
	envs := map[string]string{}
	for _, k := range Keys() {
		envs[k.Path] = k.Env
	}
	assert.Equal(t, "QUASIPAA_RTMP_LISTEN", envs["rtmp.listen"])
	assert.Equal(t, "QUASIPAA_HTTP_LISTEN", envs["http.listen"])
	assert.Equal(t, "QUASIPAA_STORAGE_DIR", envs["storage.dir"])
	assert.Equal(t, "QUASIPAA_HUB_PUBLISHER_GRACE", envs["hub.publisher_grace"])
	assert.Equal(t, "QUASIPAA_LOG_LEVEL", envs["log.level"])
	assert.Equal(t, "QUASIPAA_HUB_WRITE_MERGE", envs["hub.write_merge"])
}

func TestLoadNoFileNoEnv(t *testing.T) {
	c, err := Load("", nil)
	require.NoError(t, err)
	assert.Equal(t, Default(), c)
}

func TestLoadFileOverlay(t *testing.T) {
	p := writeFile(t, `
rtmp:
  listen: "127.0.0.1:19350"
  chunk_size: 0x1000
http:
  cors_origin: https://example.com
log:
  level: debug
hub:
  gop_cache: false
  queue_size: 2_048
  publisher_grace: 0
  conflict: takeover
  write_merge: 100ms
storage:
`)
	c, err := Load(p, nil)
	require.NoError(t, err)
	want := Default()
	want.RTMP.Listen = "127.0.0.1:19350"
	want.RTMP.ChunkSize = 4096
	want.HTTP.CORSOrigin = "https://example.com"
	want.Log.Level = "debug"
	want.Hub.GOPCache = false
	want.Hub.QueueSize = 2048
	want.Hub.PublisherGrace = 0
	want.Hub.Conflict = "takeover"
	want.Hub.WriteMerge = 100 * time.Millisecond
	assert.Equal(t, want, c)
}

func TestLoadEmptyAndCommentOnlyFiles(t *testing.T) {
	for _, body := range []string{"", "# nothing\n", "---\n", "rtmp:\nhub:\n"} {
		c, err := Load(writeFile(t, body), nil)
		require.NoError(t, err, "%q", body)
		assert.Equal(t, Default(), c, "%q", body)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	p := writeFile(t, "rtmp:\n  listen: \":1000\"\nhub:\n  publisher_grace: 1s\n")
	c, err := Load(p, []string{
		"PATH=/usr/bin",
		"QUASIPAA_CONFIG=/ignored/by/load.yaml",
		"QUASIPAA_RTMP_LISTEN=127.0.0.1:0",
		"QUASIPAA_HTTP_LISTEN=127.0.0.1:0",
		"QUASIPAA_STORAGE_DIR=/tmp/q",
		"QUASIPAA_HUB_PUBLISHER_GRACE=3s",
		"QUASIPAA_LOG_LEVEL=debug",
		"QUASIPAA_LOG_FORMAT=json",
		"QUASIPAA_HUB_GOP_CACHE=false",
		"QUASIPAA_HUB_QUEUE_SIZE=64",
		"QUASIPAA_HUB_WRITE_MERGE=0",
	})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:0", c.RTMP.Listen)
	assert.Equal(t, "127.0.0.1:0", c.HTTP.Listen)
	assert.Equal(t, "/tmp/q", c.Storage.Dir)
	assert.Equal(t, 3*time.Second, c.Hub.PublisherGrace)
	assert.Equal(t, Log{Level: "debug", Format: "json"}, c.Log)
	assert.False(t, c.Hub.GOPCache)
	assert.Equal(t, 64, c.Hub.QueueSize)
	assert.Equal(t, time.Duration(0), c.Hub.WriteMerge)
}

func TestEnvEmptyRTMPListenDisables(t *testing.T) {
	c, err := Load("", []string{"QUASIPAA_RTMP_LISTEN="})
	require.NoError(t, err)
	assert.Equal(t, "", c.RTMP.Listen)
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		file string   // YAML body; "" means no file
		env  []string // environment
		want []string // substrings of the error
	}{
		{"unknown key", "rtmp:\n  listn: \":1\"\n", nil, []string{"rtmp.listn: unknown key", `did you mean "listen"`, "valid keys in rtmp: listen, chunk_size"}},
		{"unknown section", "hubb:\n  queue_size: 64\n", nil, []string{"hubb: unknown key", "valid keys: rtmp, http, storage, log, hub"}},
		{"unknown deep key", "hub:\n  queue_size: 64\n  gop: true\n", nil, []string{"hub.gop: unknown key (line 3"}},
		{"duplicate key", "hub:\n  queue_size: 64\n  queue_size: 65\n", nil, []string{"hub.queue_size: line 3: key given twice (first on line 2)"}},
		{"section is scalar", "rtmp: yes\n", nil, []string{"rtmp: line 1: expected a mapping"}},
		{"top level is list", "- a\n", nil, []string{"top level: line 1: expected a mapping"}},
		{"leaf is mapping", "rtmp:\n  listen:\n    port: 1\n", nil, []string{"rtmp.listen: line 3: expected a single value, got a mapping"}},
		{"leaf is null", "hub:\n  queue_size:\n", nil, []string{"hub.queue_size: line 2: no value"}},
		{"bad int in file", "hub:\n  queue_size: many\n", nil, []string{`hub.queue_size: line 2: invalid integer "many"`}},
		{"bad bool in file", "hub:\n  gop_cache: maybe\n", nil, []string{`hub.gop_cache: line 2: invalid boolean "maybe"`}},
		{"duration without unit", "hub:\n  publisher_grace: 5\n", nil, []string{`hub.publisher_grace: line 2: invalid duration "5"`}},
		{"bad yaml", "rtmp: [\n", nil, []string{"config file"}},
		{"two documents", "rtmp: {}\n---\nhub: {}\n", nil, []string{"more than one YAML document"}},

		{"bad env int", "", []string{"QUASIPAA_HUB_QUEUE_SIZE=abc"}, []string{"hub.queue_size", "QUASIPAA_HUB_QUEUE_SIZE", `invalid integer "abc"`}},
		{"bad env duration", "", []string{"QUASIPAA_HUB_PUBLISHER_GRACE=3"}, []string{"hub.publisher_grace", `invalid duration "3"`}},
		{"empty env int", "", []string{"QUASIPAA_HUB_MAX_DROPS="}, []string{"hub.max_drops", `invalid integer ""`}},
		{"unknown env", "", []string{"QUASIPAA_RTMP_LISTN=:1", "QUASIPAA_NOT_A_KEY=1"}, []string{"unknown variables QUASIPAA_NOT_A_KEY, QUASIPAA_RTMP_LISTN (did you mean QUASIPAA_RTMP_LISTEN?)"}},

		{"bad http.listen", "", []string{"QUASIPAA_HTTP_LISTEN=x"}, []string{`http.listen: invalid address "x": missing port in address`}},
		{"empty http.listen", "http:\n  listen: \"\"\n", nil, []string{"http.listen: must not be empty"}},
		{"bad rtmp port", "", []string{"QUASIPAA_RTMP_LISTEN=:rtmp"}, []string{`rtmp.listen: invalid address ":rtmp": port must be a number`}},
		{"port too big", "", []string{"QUASIPAA_RTMP_LISTEN=:70000"}, []string{`rtmp.listen: invalid address ":70000"`}},
		{"bad conflict", "hub:\n  conflict: kick\n", nil, []string{`hub.conflict: must be "refuse" or "takeover"`}},
		{"chunk too small", "rtmp:\n  chunk_size: 127\n", nil, []string{"rtmp.chunk_size: 127 out of range 128..16777215"}},
		{"chunk too big", "rtmp:\n  chunk_size: 16777216\n", nil, []string{"rtmp.chunk_size: 16777216 out of range"}},
		{"message too big", "rtmp:\n  max_message_size: 16777217\n", nil, []string{"rtmp.max_message_size: 16777217 out of range 1024..16777216"}},
		{"zero handshake", "rtmp:\n  handshake_timeout: 0s\n", nil, []string{"rtmp.handshake_timeout: must be a positive duration"}},
		{"queue too small", "hub:\n  queue_size: 15\n", nil, []string{"hub.queue_size: 15 out of range 16..65536"}},
		{"queue too big", "hub:\n  queue_size: 65537\n", nil, []string{"hub.queue_size: 65537 out of range"}},
		{"negative grace", "hub:\n  publisher_grace: -1s\n", nil, []string{"hub.publisher_grace: must not be negative"}},
		{"zero max drops", "hub:\n  max_drops: 0\n", nil, []string{"hub.max_drops: 0 out of range"}},
		{"zero drop window", "hub:\n  drop_window: 0s\n", nil, []string{"hub.drop_window: must be a positive duration"}},
		{"negative write timeout", "hub:\n  write_timeout: -5s\n", nil, []string{"hub.write_timeout: must be a positive duration"}},
		{"merge too long", "hub:\n  write_merge: 2s\n", nil, []string{"hub.write_merge: 2s out of range 0s..1s"}},
		{"bad level", "", []string{"QUASIPAA_LOG_LEVEL=verbose"}, []string{`log.level: must be "debug", "info", "warn" or "error", got "verbose"`}},
		{"bad format", "log:\n  format: xml\n", nil, []string{`log.format: must be "text" or "json"`}},
		{"empty storage", "storage:\n  dir: \"\"\n", nil, []string{"storage.dir: must not be empty"}},
		{"s3 without bucket", "storage:\n  s3:\n    endpoint: minio:9000\n", nil, []string{"storage.s3.bucket: required when storage.s3.endpoint is set"}},
		{"s3 bad bucket", "", []string{"QUASIPAA_STORAGE_S3_ENDPOINT=minio:9000", "QUASIPAA_STORAGE_S3_BUCKET=Rec_ordings"}, []string{`storage.s3.bucket: invalid bucket name "Rec_ordings"`}},
		{"s3 endpoint with scheme", "storage:\n  s3:\n    endpoint: https://s3.example.com\n    bucket: rec\n", nil, []string{"storage.s3.endpoint: must be host or host:port without scheme"}},
		{"s3 endpoint bad port", "", []string{"QUASIPAA_STORAGE_S3_ENDPOINT=minio:s3", "QUASIPAA_STORAGE_S3_BUCKET=rec"}, []string{`storage.s3.endpoint: invalid address "minio:s3"`}},
		{"s3 key without secret", "", []string{"QUASIPAA_STORAGE_S3_ENDPOINT=minio:9000", "QUASIPAA_STORAGE_S3_BUCKET=rec", "QUASIPAA_STORAGE_S3_ACCESS_KEY=k"}, []string{"storage.s3.secret_key: storage.s3.access_key and storage.s3.secret_key must be set together"}},
		{"s3 unknown key", "storage:\n  s3:\n    endpiont: x\n", nil, []string{"storage.s3.endpiont: unknown key", `did you mean "endpoint"`}},
		{"bad origin", "http:\n  cors_origin: example.com\n", nil, []string{`http.cors_origin: must be "*", "" or an origin`}},
		{"several problems at once", "hub:\n  queue_size: 1\n  conflict: x\n", nil, []string{"hub.queue_size:", "hub.conflict:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			_, err := Load(path, tc.env)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestS3Settings(t *testing.T) {
	p := writeFile(t, "storage:\n  s3:\n    endpoint: minio.internal:9000\n    bucket: recordings\n    access_key: AK\n    region: eu-west-1\n")
	c, err := Load(p, []string{
		"QUASIPAA_STORAGE_S3_SECRET_KEY=from-env",
		"QUASIPAA_STORAGE_S3_USE_SSL=true",
		"QUASIPAA_STORAGE_S3_PATH_STYLE=false",
	})
	require.NoError(t, err)
	assert.Equal(t, S3{
		Endpoint: "minio.internal:9000", Bucket: "recordings", AccessKey: "AK", SecretKey: "from-env",
		Region: "eu-west-1", UseSSL: true, PathStyle: false,
	}, c.Storage.S3)
	assert.Equal(t, "./data", c.Storage.Dir)

	// Without an endpoint the other keys are not checked: local disk.
	c, err = Load("", []string{"QUASIPAA_STORAGE_S3_BUCKET=Not_Checked"})
	require.NoError(t, err)
	assert.Equal(t, "", c.Storage.S3.Endpoint)

	// A host without port, and anonymous access, are fine.
	_, err = Load("", []string{"QUASIPAA_STORAGE_S3_ENDPOINT=s3.amazonaws.com", "QUASIPAA_STORAGE_S3_BUCKET=my.bucket-1"})
	require.NoError(t, err)
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope.yaml")
}

func TestAnchorsAndAliases(t *testing.T) {
	p := writeFile(t, "http:\n  listen: &a \"127.0.0.1:8081\"\nrtmp:\n  listen: \"127.0.0.1:1936\"\n  handshake_timeout: &t 3s\nhub:\n  write_timeout: *t\n")
	c, err := Load(p, nil)
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, c.Hub.WriteTimeout)
}

// The reference in docs/config.md documents every key and its variable.
func TestDocsMentionEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	require.NoError(t, err)
	doc := string(b)
	var missing []string
	for _, k := range append(Keys(), ItemKeys("apps")...) {
		for _, s := range []string{"`" + k.Path + "`", "`" + k.Env + "`"} {
			if s == "``" {
				continue
			}
			if !strings.Contains(doc, s) {
				missing = append(missing, s)
			}
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "docs/config.md does not mention these")
}

func TestAppsFromFile(t *testing.T) {
	p := writeFile(t, `
apps:
  - match: "live/*"
    record: true
    retention: 24h
  - match: "vod/**"
    hls_variant: mpegts
    record_segment: 10s
`)
	c, err := Load(p, nil)
	require.NoError(t, err)
	require.Len(t, c.Apps, 2)
	assert.Equal(t, App{Match: "live/*", Record: true, RecordSegment: 4 * time.Second, Retention: 24 * time.Hour, DVRWindow: 2 * time.Hour, Auth: AuthNone}, c.Apps[0])
	assert.Equal(t, "mpegts", c.Apps[1].HLSVariant)
	assert.Equal(t, 10*time.Second, c.Apps[1].RecordSegment)

	a, ok := c.AppFor("live/cam1")
	assert.True(t, ok)
	assert.True(t, a.Record)
	_, ok = c.AppFor("live/cam1/sub")
	assert.False(t, ok, "'*' does not cross a slash")
	a, ok = c.AppFor("vod/a/b")
	assert.True(t, ok)
	assert.Equal(t, "mpegts", a.HLSVariant)
	_, ok = c.AppFor("vod")
	assert.False(t, ok, "vod/** needs something below vod/")
}

func TestAppsFromEnv(t *testing.T) {
	c, err := Load("", []string{`QUASIPAA_APPS=[{"match": "**", "record": true, "record_segment": "2s"}]`})
	require.NoError(t, err)
	require.Len(t, c.Apps, 1)
	assert.Equal(t, 2*time.Second, c.Apps[0].RecordSegment)
	assert.True(t, c.Apps[0].Record)

	c, err = Load("", []string{`QUASIPAA_APPS=[]`})
	require.NoError(t, err)
	assert.Empty(t, c.Apps)
}

func TestAppsErrorsNameTheKey(t *testing.T) {
	for body, want := range map[string]string{
		"apps:\n  - record: true\n":                              "apps[0].match: required",
		"apps:\n  - match: \"[\"\n":                              "apps[0].match: invalid pattern",
		"apps:\n  - match: a\n    record_segment: 100ms\n":       "apps[0].record_segment",
		"apps:\n  - match: a\n  - match: b\n    retention: 1s\n": "apps[1].retention",
		"apps:\n  - match: a\n    hls_variant: dash\n":           "apps[0].hls_variant",
		"apps:\n  - match: a\n    recrd: true\n":                 `apps[0].recrd: unknown key`,
		"apps:\n  match: a\n":                                    "apps: line 2: expected a list",
		"apps:\n  - match: a\n    record: maybe\n":               "apps[0].record",
	} {
		_, err := Load(writeFile(t, body), nil)
		require.Error(t, err, body)
		assert.Contains(t, err.Error(), want, body)
	}
	_, err := Load("", []string{`QUASIPAA_APPS=[{"match": 5`})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "QUASIPAA_APPS")
}

func TestMatchPath(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"**", "a/b", true},
		{"live/cam1", "live/cam1", true},
		{"live/cam1", "live/cam2", false},
		{"live/*", "live/x", true},
		{"*/x", "live/x", true},
		{"live/**", "live/x/y", true},
		{"live/**", "livex/y", false},
		{"*/**", "a/b/c", true},
	} {
		assert.Equal(t, c.want, MatchPath(c.pattern, c.path), "%s vs %s", c.pattern, c.path)
	}
}

func TestAppsDuplicateMatch(t *testing.T) {
	_, err := Load("", []string{`QUASIPAA_APPS=[{match: "live/*"}, {match: "x/*"}, {match: "live/*"}]`})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `apps[2].match: "live/*" is already the match of apps[0]`)
}
