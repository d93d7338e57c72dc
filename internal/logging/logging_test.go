package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/config"
)

func TestTextLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(config.Log{Level: "warn", Format: "text"}, &buf)
	require.NoError(t, err)
	log.Info("hidden")
	log.Warn("shown", "stream", "live/cam1")
	out := buf.String()
	assert.NotContains(t, out, "hidden")
	assert.Contains(t, out, "level=WARN")
	assert.Contains(t, out, "msg=shown stream=live/cam1")
}

func TestJSONDebug(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(config.Log{Level: "DEBUG", Format: "json"}, &buf)
	require.NoError(t, err)
	log.Debug("hello", "n", 3)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	assert.Equal(t, "DEBUG", rec["level"])
	assert.Equal(t, "hello", rec["msg"])
	assert.EqualValues(t, 3, rec["n"])
}

func TestDefaultConfigWorks(t *testing.T) {
	_, err := New(config.Default().Log, &bytes.Buffer{})
	require.NoError(t, err)
}

func TestErrors(t *testing.T) {
	_, err := New(config.Log{Level: "loud", Format: "text"}, &bytes.Buffer{})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "log.level:"), err.Error())
	_, err = New(config.Log{Level: "info", Format: "xml"}, &bytes.Buffer{})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "log.format:"), err.Error())
}
