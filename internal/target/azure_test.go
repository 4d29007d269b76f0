package target_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/target/targettest"
)

var (
	azureImageUEFI = target.Image{Type: "vhd", Format: "vhd", BootMode: "hybrid", Arch: "x86_64"}
	azureImageBIOS = target.Image{Type: "vhd", Format: "vhd", BootMode: "bios", Arch: "x86_64"}
)

// azureOffline is a target whose endpoints are never reached: for Check.
func azureOffline(t *testing.T) target.Target {
	t.Helper()
	cfg := target.AzureConfig{
		TenantID: "t-1", SubscriptionID: "s-1", ClientID: "c-1",
		StorageAccount: "acct", Container: "vhds", Location: "westeurope",
	}
	z, err := target.NewAzure(cfg, func(k string) string {
		if k == target.DefaultAzureClientSecretEnv {
			return "secret"
		}
		return ""
	})
	require.NoError(t, err)
	return z
}

func TestAzureCheck(t *testing.T) {
	z := azureOffline(t)
	assert.Equal(t, "azure", z.Type())
	assert.True(t, target.WantsFile(z))
	assert.NoError(t, z.Check(azureImageBIOS, json.RawMessage(`{"resource_group":"ToucanResourceGroup"}`)))
	assert.NoError(t, z.Check(azureImageUEFI, json.RawMessage(`{"tenant_id":"t-1","subscription_id":"s-1","resource_group":"rg","image_name":"LinuxImage_","hyper_v_generation":"V2"}`)))

	for _, tc := range []struct {
		name    string
		img     target.Image
		options string
		want    []string
	}{
		{"no options", azureImageBIOS, ``, []string{"options.resource_group: is required"}},
		{"unknown option", azureImageBIOS, `{"resource_group":"rg","region":"x"}`, []string{"options.region: unknown option"}},
		{"source", azureImageBIOS, `{"resource_group":"rg","source_id":"12345"}`, []string{"options.source_id: this server has no sources service"}},
		{"tenant alone", azureImageBIOS, `{"resource_group":"rg","tenant_id":"t-1"}`, []string{"options.subscription_id: give tenant_id and subscription_id together"}},
		{"another subscription", azureImageBIOS, `{"resource_group":"rg","tenant_id":"t-1","subscription_id":"s-2"}`, []string{"options.subscription_id: this server makes images only in the subscription its operator configured"}},
		{"name pattern", azureImageBIOS, `{"resource_group":"rg","image_name":"-bad-"}`, []string{`options.image_name: "-bad-" is not an Azure image name`}},
		{"name length", azureImageBIOS, `{"resource_group":"rg","image_name":"` + strings.Repeat("a", 61) + `"}`, []string{"options.image_name:", "at most 60"}},
		{"generation", azureImageBIOS, `{"resource_group":"rg","hyper_v_generation":"V3"}`, []string{`options.hyper_v_generation: "V3" is not V1 or V2`}},
		{"V2 needs UEFI", azureImageBIOS, `{"resource_group":"rg","hyper_v_generation":"V2"}`, []string{"options.hyper_v_generation: V2 boots with UEFI, and this vhd image boots with bios only"}},
		{"not a VHD", target.Image{Type: "qcow2", Format: "qcow2", BootMode: "hybrid", Arch: "x86_64"}, `{"resource_group":"rg"}`, []string{"not a qcow2 image (qcow2); build the image type vhd (image-builder's azure)"}},
		{"every problem", azureImageBIOS, `{"resource_group":"rg/x","image_name":"x!","hyper_v_generation":"v1"}`, []string{"options.resource_group:", "options.image_name:", "options.hyper_v_generation:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := z.Check(tc.img, json.RawMessage(tc.options))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestNewAzureNamesEveryMissingField(t *testing.T) {
	_, err := target.NewAzure(target.AzureConfig{BlobEndpoint: "ftp://x"}, func(string) string { return "" })
	require.Error(t, err)
	for _, f := range []string{"tenant_id", "subscription_id", "client_id", "storage_account", "container", "location"} {
		assert.Contains(t, err.Error(), "[targets.azure]."+f+": must be set")
	}
	assert.Contains(t, err.Error(), "[targets.azure].client_secret_env: $AZURE_CLIENT_SECRET is empty")
	assert.Contains(t, err.Error(), `[targets.azure].blob_endpoint: "ftp://x" is not an http(s) URL`)

	r, err := target.Build(target.Config{Azure: &target.AzureConfig{
		TenantID: "t", SubscriptionID: "s", ClientID: "c", StorageAccount: "a", Container: "c", Location: "l",
		ClientSecretEnv: "MY_SECRET",
	}}, func(k string) string {
		if k == "MY_SECRET" {
			return "x"
		}
		return ""
	}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"aws.s3", "azure", "local"}, r.Types())
}

func TestAzureSectionFromTOML(t *testing.T) {
	const file = `
[azure]
tenant_id = "t"
subscription_id = "s"
client_id = "c"
client_secret_file = "SECRET_FILE"
storage_account = "kilnimages"
container = "vhds"
storage_key_env = "MY_STORAGE_KEY"
location = "westeurope"
retry_delay = "500ms"
poll_interval = "5s"
cleanup_wait = "1m"
parallel = 4
`
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	var cfg target.Config
	md, err := toml.Decode(strings.Replace(file, "SECRET_FILE", secret, 1), &cfg)
	require.NoError(t, err)
	assert.Empty(t, md.Undecoded())
	require.NotNil(t, cfg.Azure)
	assert.Equal(t, 500*time.Millisecond, cfg.Azure.RetryDelay)
	assert.Equal(t, 5*time.Second, cfg.Azure.PollInterval)
	assert.Equal(t, time.Minute, cfg.Azure.CleanupWait)
	assert.Equal(t, 4, cfg.Azure.Parallel)
	r, err := target.Build(cfg, func(string) string { return "" }, "")
	require.NoError(t, err, "the secret is read from the file")
	assert.Contains(t, r.Types(), "azure")

	cfg.Azure.ClientSecretFile = filepath.Join(t.TempDir(), "missing")
	_, err = target.Build(cfg, func(string) string { return "" }, "")
	assert.ErrorContains(t, err, "[targets.azure].client_secret_file:")
}

// azureVHD writes a fixed VHD of mib MiB whose disk holds data at the
// given MiB offsets (the rest is a hole), with a valid footer, and
// returns the artifact.
func azureVHD(t *testing.T, mib int, dataAt ...int) target.Artifact {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.vhd")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	size := int64(mib) << 20
	require.NoError(t, f.Truncate(size))
	for i, at := range dataAt {
		block := bytes.Repeat([]byte{byte(i + 1), 0xAB}, 32<<10)
		_, err := f.WriteAt(block, int64(at)<<20)
		require.NoError(t, err)
	}
	_, err = f.WriteAt(azureVHDFooter(size), size)
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return target.Artifact{
		ComposeID: "0f6a3a56-5d7e-4c4e-9f6b-3b1c2a4d5e6f",
		Name:      "kiln-0f6a3a56-5d7e-4c4e-9f6b-3b1c2a4d5e6f",
		Filename:  "disk.vhd",
		Path:      path,
		Size:      int64(len(b)),
		SHA256:    hex.EncodeToString(sum[:]),
		Image:     azureImageUEFI,
	}
}

// azureVHDFooter is a fixed VHD's 512-byte footer for a disk of size bytes.
func azureVHDFooter(size int64) []byte {
	f := make([]byte, 512)
	copy(f[0:], "conectix")
	binary.BigEndian.PutUint32(f[8:], 2)           // features: reserved bit
	binary.BigEndian.PutUint32(f[12:], 0x00010000) // file format version
	binary.BigEndian.PutUint64(f[16:], ^uint64(0)) // data offset: none, fixed
	copy(f[28:], "kiln")
	binary.BigEndian.PutUint64(f[40:], uint64(size)) // original size
	binary.BigEndian.PutUint64(f[48:], uint64(size)) // current size
	binary.BigEndian.PutUint32(f[56:], 0xFFFF10FF)   // geometry (max)
	binary.BigEndian.PutUint32(f[60:], 2)            // disk type: fixed
	copy(f[68:], "kiln-test-uuid!!")
	var sum uint32
	for _, b := range f {
		sum += uint32(b)
	}
	binary.BigEndian.PutUint32(f[64:], ^sum)
	return f
}

// azureProgress records what an upload reports; onBytes, if set, runs on
// each report.
type azureProgress struct {
	mu      sync.Mutex
	steps   []string
	done    int64
	total   int64
	onBytes func(done, total int64)
}

func (p *azureProgress) Step(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps = append(p.steps, s)
}

func (p *azureProgress) Bytes(done, total int64) {
	p.mu.Lock()
	p.done, p.total = done, total
	f := p.onBytes
	p.mu.Unlock()
	if f != nil {
		f(done, total)
	}
}

type azureEnv struct {
	az  *targettest.Azurite
	arm *targettest.ARM
	cfg target.AzureConfig
}

// azureStart gives a test a container of its own in az and an ARM.
func azureStart(t *testing.T, az *targettest.Azurite) *azureEnv {
	t.Helper()
	e := &azureEnv{az: az.NewContainer(t), arm: targettest.StartARM(t)}
	e.cfg = targettest.AzureConfig(e.az, e.arm)
	return e
}

// TestAzure runs the azure target against Azurite (one process for all
// subtests: it takes seconds to start) and the fake ARM.
func TestAzure(t *testing.T) {
	az := targettest.StartAzurite(t)
	t.Run("upload", func(t *testing.T) { testAzureUploadMakesTheImageFromAPageBlob(t, az) })
	t.Run("default name", func(t *testing.T) { testAzureUploadDefaultNameAndGeneration(t, az) })
	t.Run("requeue", func(t *testing.T) { testAzureRequeue(t, az) })
	t.Run("failures", func(t *testing.T) { testAzureFailures(t, az) })
}

func (e *azureEnv) target(t *testing.T) target.Target {
	t.Helper()
	z, err := target.NewAzure(e.cfg, targettest.AzureEnv(e.az, e.arm))
	require.NoError(t, err)
	return z
}

func testAzureUploadMakesTheImageFromAPageBlob(t *testing.T, az *targettest.Azurite) {
	e := azureStart(t, az)
	proxy := e.az.FaultProxy(t, -1)
	e.cfg.BlobEndpoint = proxy.Endpoint
	a := azureVHD(t, 40, 0, 13, 39)
	want, err := os.ReadFile(a.Path)
	require.NoError(t, err)

	var checked bool
	e.arm.OnCreate(func(img targettest.ARMImage) error {
		// Azure reads the blob when it makes the image: it must be a
		// page blob holding exactly the file.
		got, typ, err := e.az.ReadBlob(img.BlobURI)
		if err != nil {
			return err
		}
		if typ != "PageBlob" {
			return fmt.Errorf("the blob is a %s", typ)
		}
		if !bytes.Equal(got, want) {
			return errors.New("the blob's bytes are not the file's")
		}
		checked = true
		return nil
	})
	p := &azureProgress{}
	res, err := e.target(t).Upload(context.Background(), a, json.RawMessage(`{"resource_group":"rg-images","image_name":"my-image","hyper_v_generation":"V2"}`), p)
	require.NoError(t, err)
	assert.Equal(t, target.Result{ImageName: "my-image"}, res)
	assert.True(t, checked, "the fake ARM saw the image created")

	imgs := e.arm.Images()
	require.Len(t, imgs, 1)
	assert.Equal(t, "rg-images", imgs[0].ResourceGroup)
	assert.Equal(t, "Succeeded", imgs[0].State)
	assert.Equal(t, "V2", imgs[0].HyperVGeneration)
	assert.Equal(t, "westeurope", imgs[0].Location)
	assert.Equal(t, a.ComposeID, imgs[0].Tags["kiln-compose"])
	assert.True(t, strings.HasSuffix(imgs[0].BlobURI, "/"+e.az.Container+"/"+a.ComposeID+"/disk.vhd"), imgs[0].BlobURI)

	// Three 4 MiB ranges hold data (MiB 0, 13 and 39) and one the
	// footer; the other seven are zeros and are not sent.
	assert.Equal(t, 4, proxy.Passed())
	assert.Equal(t, []string{target.StepUploading, target.StepRegistering}, p.steps)
	assert.Equal(t, a.Size, p.done)
	assert.Equal(t, a.Size, p.total)
	assert.Empty(t, e.az.Blobs(t), "the staging blob is deleted once the image holds the disk")

	var methods []string
	for _, c := range e.arm.Calls() {
		methods = append(methods, c.Method)
	}
	assert.Equal(t, []string{"POST", "GET", "PUT", "GET", "GET", "GET"}, methods, "token, image lookup, create, two polls, final read")
}

// TestAzureStorageWithToken reaches the storage account with the service
// principal's token instead of a key, over https with the server's own
// CA (ca_file).
func TestAzureStorageWithToken(t *testing.T) {
	az := targettest.StartAzuriteOAuth(t)
	e := &azureEnv{az: az, arm: targettest.StartARM(t)}
	e.cfg = targettest.AzureConfig(e.az, e.arm)
	e.cfg.StorageKeyEnv = ""
	a := azureVHD(t, 8, 1, 6)
	want, err := os.ReadFile(a.Path)
	require.NoError(t, err)
	e.arm.OnCreate(func(img targettest.ARMImage) error {
		got, typ, err := e.az.ReadBlob(img.BlobURI)
		if err != nil {
			return err
		}
		if typ != "PageBlob" || !bytes.Equal(got, want) {
			return fmt.Errorf("a %s blob that is not the file", typ)
		}
		return nil
	})
	res, err := e.target(t).Upload(context.Background(), a, json.RawMessage(`{"resource_group":"rg"}`), target.NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, a.Name, res.ImageName)
	assert.Contains(t, e.arm.TokenScopes(), "https://storage.azure.com/.default")
	assert.Empty(t, e.az.Blobs(t))
	require.Len(t, e.arm.Images(), 1)
	assert.Equal(t, "Succeeded", e.arm.Images()[0].State)
}

func testAzureUploadDefaultNameAndGeneration(t *testing.T, az *targettest.Azurite) {
	e := azureStart(t, az)
	a := azureVHD(t, 8, 1)
	a.Name = "My image (test)"
	res, err := e.target(t).Upload(context.Background(), a, json.RawMessage(`{"resource_group":"rg"}`), target.NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, "My-image--test", res.ImageName, "a valid Azure name made of the compose's")
	imgs := e.arm.Images()
	require.Len(t, imgs, 1)
	assert.Equal(t, res.ImageName, imgs[0].Name)
	assert.Equal(t, "V1", imgs[0].HyperVGeneration)
}

func testAzureRequeue(t *testing.T, az *targettest.Azurite) {
	t.Run("an image this compose made is reused and the leftover blob deleted", func(t *testing.T) {
		e := azureStart(t, az)
		a := azureVHD(t, 8, 1)
		// A first attempt uploaded and made the image, then the worker died.
		_, err := e.target(t).Upload(context.Background(), a, json.RawMessage(`{"resource_group":"rg","image_name":"img"}`), target.NoReporter{})
		require.NoError(t, err)
		stage := e.az.FaultProxy(t, -1)
		e.cfg.BlobEndpoint = stage.Endpoint
		res, err := e.target(t).Upload(context.Background(), a, json.RawMessage(`{"resource_group":"rg","image_name":"img"}`), target.NoReporter{})
		require.NoError(t, err)
		assert.Equal(t, "img", res.ImageName)
		assert.Len(t, e.arm.Images(), 1)
		assert.Zero(t, stage.Passed(), "nothing uploaded again")
		puts := 0
		for _, c := range e.arm.Calls() {
			if c.Method == "PUT" {
				puts++
			}
		}
		assert.Equal(t, 1, puts, "the image is made once")
	})
	t.Run("a blob a failed attempt left is replaced", func(t *testing.T) {
		e := azureStart(t, az)
		a := azureVHD(t, 8, 1)
		proxy := e.az.FaultProxy(t, 0)
		first := e.cfg
		first.BlobEndpoint = proxy.Endpoint
		first.CleanupWait = time.Nanosecond // the worker died: no cleanup
		z1, err := target.NewAzure(first, targettest.AzureEnv(e.az, e.arm))
		require.NoError(t, err)
		_, err = z1.Upload(context.Background(), a, json.RawMessage(`{"resource_group":"rg"}`), target.NoReporter{})
		require.Error(t, err)

		res, err := e.target(t).Upload(context.Background(), a, json.RawMessage(`{"resource_group":"rg"}`), target.NoReporter{})
		require.NoError(t, err)
		assert.Equal(t, a.Name, res.ImageName)
		assert.Empty(t, e.az.Blobs(t))
	})
	t.Run("an image this compose left unfinished is made anew", func(t *testing.T) {
		e := azureStart(t, az)
		a := azureVHD(t, 8, 1)
		e.arm.AddImage(targettest.ARMImage{ResourceGroup: "rg", Name: "img", Location: "westeurope", State: "Failed", Tags: map[string]string{"kiln-compose": a.ComposeID}})
		res, err := e.target(t).Upload(context.Background(), a, json.RawMessage(`{"resource_group":"rg","image_name":"img"}`), target.NoReporter{})
		require.NoError(t, err)
		assert.Equal(t, "img", res.ImageName)
		var methods []string
		for _, c := range e.arm.Calls() {
			if c.Method != "POST" {
				methods = append(methods, c.Method)
			}
		}
		assert.Equal(t, []string{"GET", "DELETE", "PUT", "GET", "GET", "GET"}, methods, "look up, delete the failed one, make it, poll twice, read it")
		imgs := e.arm.Images()
		require.Len(t, imgs, 1)
		assert.Equal(t, "Succeeded", imgs[0].State)
	})
	t.Run("an image of that name from something else is refused", func(t *testing.T) {
		e := azureStart(t, az)
		e.arm.AddImage(targettest.ARMImage{ResourceGroup: "rg", Name: "img", Location: "westeurope", Tags: map[string]string{"kiln-compose": "another"}})
		a := azureVHD(t, 8, 1)
		_, err := e.target(t).Upload(context.Background(), a, json.RawMessage(`{"resource_group":"rg","image_name":"img"}`), target.NoReporter{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `azure: look up the image: an image named "img" already exists in resource group "rg" and was not made from this compose; choose another image_name`)
		assert.Empty(t, e.az.Blobs(t))
	})
}

func testAzureFailures(t *testing.T, az *targettest.Azurite) {
	opts := json.RawMessage(`{"resource_group":"rg"}`)
	assertFailed := func(t *testing.T, e *azureEnv, err error, step string) {
		t.Helper()
		require.Error(t, err)
		var se *target.StepError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "azure", se.Target)
		assert.Equal(t, step, se.Step)
		assert.Empty(t, e.az.Blobs(t), "no staging blob left behind")
	}

	t.Run("credentials refused", func(t *testing.T) {
		e := azureStart(t, az)
		e.arm.RefuseCredentials()
		_, err := e.target(t).Upload(context.Background(), azureVHD(t, 8, 1), opts, target.NoReporter{})
		assertFailed(t, e, err, "look up the image")
		assert.Contains(t, err.Error(), "the credentials were refused (HTTP 401 invalid_client")
		assert.NotContains(t, err.Error(), e.arm.ClientSecret)
	})
	t.Run("the token endpoint briefly down", func(t *testing.T) {
		e := azureStart(t, az)
		e.arm.FailTokenRequests(e.cfg.MaxRetries)
		res, err := e.target(t).Upload(context.Background(), azureVHD(t, 8, 1), opts, target.NoReporter{})
		require.NoError(t, err, "asked again with backoff")
		assert.NotEmpty(t, res.ImageName)
	})
	t.Run("the token endpoint down longer than the retries", func(t *testing.T) {
		e := azureStart(t, az)
		e.arm.FailTokenRequests(e.cfg.MaxRetries + 1)
		_, err := e.target(t).Upload(context.Background(), azureVHD(t, 8, 1), opts, target.NoReporter{})
		assertFailed(t, e, err, "look up the image")
		assert.Contains(t, err.Error(), "HTTP 503 temporarily_unavailable")
	})
	t.Run("storage key refused", func(t *testing.T) {
		e := azureStart(t, az)
		env := targettest.AzureEnv(e.az, e.arm)
		z, err := target.NewAzure(e.cfg, func(k string) string {
			if k == targettest.AzuriteKeyEnv {
				return "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
			}
			return env(k)
		})
		require.NoError(t, err)
		_, err = z.Upload(context.Background(), azureVHD(t, 8, 1), opts, target.NoReporter{})
		assertFailed(t, e, err, "upload the disk")
		assert.Contains(t, err.Error(), "403")
	})
	t.Run("ARM down", func(t *testing.T) {
		e := azureStart(t, az)
		e.cfg.ARMEndpoint = "http://127.0.0.1:1"
		_, err := e.target(t).Upload(context.Background(), azureVHD(t, 8, 1), opts, target.NoReporter{})
		assertFailed(t, e, err, "look up the image")
	})
	t.Run("500 on a page mid-upload", func(t *testing.T) {
		e := azureStart(t, az)
		proxy := e.az.FaultProxy(t, 1)
		e.cfg.BlobEndpoint = proxy.Endpoint
		e.cfg.Parallel = 1
		_, err := e.target(t).Upload(context.Background(), azureVHD(t, 24, 1, 9, 17), opts, target.NoReporter{})
		assertFailed(t, e, err, "upload the disk")
		assert.Contains(t, err.Error(), "500")
		assert.Equal(t, 1+e.cfg.MaxRetries, proxy.Failed(), "the failed range was retried")
		assert.Empty(t, e.arm.Images())
	})
	t.Run("Azurite stopped mid-upload", func(t *testing.T) {
		// Its own Azurite: this one is stopped and started again.
		e := azureStart(t, targettest.StartAzurite(t))
		p := &azureProgress{}
		var once sync.Once
		restarted := make(chan struct{})
		p.onBytes = func(done, total int64) {
			once.Do(func() {
				e.az.Stop()
				go func() {
					defer close(restarted)
					time.Sleep(time.Second)
					e.az.Start()
				}()
			})
		}
		_, err := e.target(t).Upload(context.Background(), azureVHD(t, 16, 1, 5), opts, p)
		<-restarted
		assertFailed(t, e, err, "upload the disk")
		assert.Contains(t, err.Error(), "connection refused")
	})
	t.Run("500 creating the image", func(t *testing.T) {
		e := azureStart(t, az)
		e.arm.FailPut()
		_, err := e.target(t).Upload(context.Background(), azureVHD(t, 8, 1), opts, target.NoReporter{})
		assertFailed(t, e, err, "create the image")
		assert.Contains(t, err.Error(), "InternalServerError")
	})
	t.Run("the creation fails", func(t *testing.T) {
		e := azureStart(t, az)
		e.arm.FailCreation()
		_, err := e.target(t).Upload(context.Background(), azureVHD(t, 8, 1), opts, target.NoReporter{})
		assertFailed(t, e, err, "create the image")
		assert.Contains(t, err.Error(), "InvalidVhd")
	})
	t.Run("canceled mid-upload", func(t *testing.T) {
		e := azureStart(t, az)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := &azureProgress{onBytes: func(int64, int64) { cancel() }}
		_, err := e.target(t).Upload(ctx, azureVHD(t, 16, 1, 5, 9), opts, p)
		assertFailed(t, e, err, "upload the disk")
		assert.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, e.arm.Images())
	})
	t.Run("canceled while the image is made", func(t *testing.T) {
		e := azureStart(t, az)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e.arm.OnCreate(func(targettest.ARMImage) error { cancel(); return nil })
		_, err := e.target(t).Upload(ctx, azureVHD(t, 8, 1), opts, target.NoReporter{})
		assertFailed(t, e, err, "create the image")
		assert.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, e.arm.Images(), "the half-made image is deleted")
	})
	t.Run("the file is not what the build recorded", func(t *testing.T) {
		e := azureStart(t, az)
		a := azureVHD(t, 8, 1)
		a.SHA256 = strings.Repeat("0", 64)
		_, err := e.target(t).Upload(context.Background(), a, opts, target.NoReporter{})
		assertFailed(t, e, err, "upload the disk")
		assert.Contains(t, err.Error(), "SHA-256")
	})
}
