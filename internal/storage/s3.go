package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says how to reach an S3-compatible bucket.
type S3Config struct {
	Endpoint     string // host[:port] of the S3 API, without scheme
	Bucket       string // bucket holding the objects
	AccessKey    string // access key id
	SecretKey    string // secret access key
	Region       string // region; "" lets the client discover it
	UseSSL       bool   // https instead of http
	PathStyle    bool   // bucket in the path (endpoint/bucket/key) instead of the host name
	CreateBucket bool   // create the bucket when it does not exist
}

// S3 is a Store on a bucket of any S3-compatible object store.
type S3 struct {
	client *minio.Client
	bucket string
}

var _ Store = (*S3)(nil)

// NewS3 connects to cfg.Endpoint and checks that the bucket exists,
// creating it when cfg.CreateBucket is set.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("storage: s3: empty endpoint")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("storage: s3: empty bucket")
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.UseSSL,
		Region:       cfg.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: s3: %w", err)
	}
	s := &S3{client: client, bucket: cfg.Bucket}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("storage: s3: bucket %q: %w", cfg.Bucket, err)
	}
	if !ok {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("storage: s3: bucket %q does not exist", cfg.Bucket)
		}
		err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if err != nil {
			code := minio.ToErrorResponse(err).Code
			if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return nil, fmt.Errorf("storage: s3: create bucket %q: %w", cfg.Bucket, err)
			}
		}
	}
	return s, nil
}

// Put uploads the object in one request (or a multipart upload for large
// objects); S3 makes it visible only once complete. A network failure is
// retried by the client when r is an io.Seeker positioned at its start.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("storage: put %q: negative size %d", key, size)
	}
	// minio-go retries a failed request when the body can seek back; a
	// source that is short or broken would be retried for seconds. The
	// wrapper cancels the request at once in that case instead.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	src := &sourceReader{r: r, left: size, cancel: cancel}
	var body io.Reader = src
	if sk, ok := r.(io.Seeker); ok {
		body = &seekableSource{sourceReader: src, seeker: sk, size: size}
	}
	_, err := s.client.PutObject(ctx, s.bucket, key, body, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
	})
	if cause := context.Cause(ctx); cause != nil && src.failed {
		return fmt.Errorf("storage: put %q: %w", key, cause)
	}
	if err != nil {
		return s.mapErr("put", key, err)
	}
	return nil
}

// sourceReader passes through the object's bytes and cancels the upload
// when the source fails or ends before size bytes.
type sourceReader struct {
	r      io.Reader
	left   int64
	failed bool
	cancel context.CancelCauseFunc
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.left -= int64(n)
	switch {
	case err == io.EOF && s.left > 0:
		err = fmt.Errorf("source ended %d bytes early: %w", s.left, io.ErrUnexpectedEOF)
		fallthrough
	case err != nil && err != io.EOF:
		s.failed = true
		s.cancel(err)
	}
	return n, err
}

// seekableSource keeps the source seekable so minio-go can retry a request
// that failed on the network side.
type seekableSource struct {
	*sourceReader
	seeker io.Seeker
	size   int64
}

func (s *seekableSource) Seek(offset int64, whence int) (int64, error) {
	pos, err := s.seeker.Seek(offset, whence)
	if err == nil {
		s.left = s.size - pos
	}
	return pos, err
}

// Get downloads the requested byte range of key.
func (s *S3) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := checkRange(offset, length); err != nil {
		return nil, err
	}
	if length == 0 {
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	if offset > 0 || length > 0 {
		end := int64(0) // with offset > 0: to the end
		if length > 0 {
			end = offset + length - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidRange, err)
		}
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, s.mapErr("get", key, err)
	}
	// GetObject is lazy: Stat sends the request, so errors surface here.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if r := minio.ToErrorResponse(err); r.Code == "InvalidRange" || r.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			// S3 refuses a range starting at the end; the contract returns
			// an empty reader there and ErrInvalidRange only beyond it.
			info, serr := s.Stat(ctx, key)
			if serr != nil {
				return nil, serr
			}
			if offset == info.Size {
				return io.NopCloser(strings.NewReader("")), nil
			}
			return nil, fmt.Errorf("%w: offset %d beyond size %d of %q", ErrInvalidRange, offset, info.Size, key)
		}
		return nil, s.mapErr("get", key, err)
	}
	return obj, nil
}

// Stat describes key.
func (s *S3) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.mapErr("stat", key, err)
	}
	return ObjectInfo{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

// List returns every object under prefix, sorted by key.
func (s *S3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	out := []ObjectInfo{}
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, s.mapErr("list", prefix, obj.Err)
		}
		if ValidateKey(obj.Key) != nil {
			continue // written by something else; not addressable through Store
		}
		out = append(out, ObjectInfo{Key: obj.Key, Size: obj.Size, ModTime: obj.LastModified})
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes key. S3 deletes are idempotent, so a Stat first reports
// ErrNotFound for a missing key as FS does.
func (s *S3) Delete(ctx context.Context, key string) error {
	if _, err := s.Stat(ctx, key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return s.mapErr("delete", key, err)
	}
	return nil
}

// mapErr turns S3's "no such key" into ErrNotFound.
func (s *S3) mapErr(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.Code == "NoSuchKey" || (resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket") {
		return fmt.Errorf("storage: %s %q: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("storage: s3 %s %q: %w", op, key, err)
}
