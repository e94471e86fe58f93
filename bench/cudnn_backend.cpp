// The cuDNN loader (dlopen + dlsym) and the backend-API helpers of bench/cudnn_backend.h.
#include "bench/cudnn_backend.h"

#include <dlfcn.h>
#include <glob.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <limits.h>
#include <memory>
#include <sstream>

namespace minivl::bench {
namespace {

struct Loaded {
  CudnnLibrary info;
  cudnn_detail::Api api;
};

bool is_directory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// python3's module search path (sys.path holds the site-packages of a venv too); empty without python3.
std::vector<std::string> python_paths() {
  std::vector<std::string> out;
  FILE* pipe = popen(R"(python3 -c 'import sys; print("\n".join(p for p in sys.path if p))' 2>/dev/null)", "r");
  if (!pipe) return out;
  char line[4096];
  while (fgets(line, sizeof line, pipe)) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (!s.empty()) out.push_back(s);
  }
  pclose(pipe);
  return out;
}

std::vector<std::string> globbed(const char* pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern, 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}

std::vector<std::string> candidates() {
  const std::string lib = "libcudnn.so.9";
  std::vector<std::string> out;
  auto add = [&](const std::string& c) {
    for (const std::string& seen : out)
      if (seen == c) return;
    out.push_back(c);
  };
  if (const char* env = std::getenv("CUDNN_LIB"); env && *env)
    add(is_directory(env) ? std::string(env) + "/" + lib : std::string(env));
  for (const std::string& dir : python_paths())
    if (is_file(dir + "/nvidia/cudnn/lib/" + lib)) add(dir + "/nvidia/cudnn/lib/" + lib);
  add(lib);  // the dynamic loader's own search: LD_LIBRARY_PATH, the ldconfig cache
  std::vector<std::string> dirs = {"/usr/local/cuda/lib64", "/usr/local/cuda/lib"};
  for (const char* pattern : {"/usr/local/cuda-*/lib64", "/usr/local/cuda-*/lib"})
    for (const std::string& d : globbed(pattern)) dirs.push_back(d);
  dirs.push_back("/usr/lib/x86_64-linux-gnu");
  dirs.push_back("/usr/lib64");
  for (const std::string& d : dirs)
    if (is_file(d + "/" + lib)) add(d + "/" + lib);
  return out;
}

template <typename Fn>
bool resolve(void* lib, const char* name, Fn& fn, std::string& missing) {
  fn = reinterpret_cast<Fn>(dlsym(lib, name));
  if (!fn) missing += std::string(missing.empty() ? "" : ", ") + name;
  return fn != nullptr;
}

// Loads `path` and checks it: every entry point present, major version 9, and the graph
// sub-library (libcudnn_graph.so.9, loaded by the shim on first use) answering. "" on success.
std::string try_load(const std::string& path, Loaded& out) {
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    return err ? err : "dlopen failed";
  }
  cudnn_detail::Api a;
  std::string missing;
  resolve(lib, "cudnnGetVersion", a.get_version, missing);
  resolve(lib, "cudnnGetCudartVersion", a.get_cudart_version, missing);
  resolve(lib, "cudnnGetErrorString", a.get_error_string, missing);
  resolve(lib, "cudnnCreate", a.create, missing);
  resolve(lib, "cudnnDestroy", a.destroy, missing);
  resolve(lib, "cudnnSetStream", a.set_stream, missing);
  resolve(lib, "cudnnBackendCreateDescriptor", a.create_descriptor, missing);
  resolve(lib, "cudnnBackendDestroyDescriptor", a.destroy_descriptor, missing);
  resolve(lib, "cudnnBackendSetAttribute", a.set_attribute, missing);
  resolve(lib, "cudnnBackendGetAttribute", a.get_attribute, missing);
  resolve(lib, "cudnnBackendFinalize", a.finalize, missing);
  resolve(lib, "cudnnBackendExecute", a.execute, missing);
  std::string optional_missing;
  resolve(lib, "cudnnGetLastErrorString", a.get_last_error_string, optional_missing);
  if (!missing.empty()) {
    dlclose(lib);
    return "no " + missing;
  }
  const int64_t version = int64_t(a.get_version());
  if (version < 90000 || version >= 100000) {
    dlclose(lib);
    return "cuDNN " + std::to_string(version) + ", not 9.x (the graphs here are written for cuDNN 9)";
  }
  cudnnBackendDescriptor_t probe = nullptr;
  const cudnnStatus_t status = a.create_descriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, &probe);
  if (status != CUDNN_STATUS_SUCCESS) {
    std::string why = std::string("cudnnBackendCreateDescriptor: ") + a.get_error_string(status);
    if (a.get_last_error_string) {
      char buf[512] = {};
      a.get_last_error_string(buf, sizeof buf);
      if (buf[0]) why += std::string(" (") + buf + ")";
    }
    dlclose(lib);
    return why;
  }
  a.destroy_descriptor(probe);
  Dl_info where{};
  std::string resolved = path;
  if (dladdr(reinterpret_cast<void*>(a.get_version), &where) && where.dli_fname) {
    char real[PATH_MAX];
    resolved = realpath(where.dli_fname, real) ? real : where.dli_fname;
  }
  out.api = a;
  out.info.loaded = true;
  out.info.path = resolved;
  out.info.version = version;
  out.info.cudart = int64_t(a.get_cudart_version());
  return "";
}

Loaded load() {
  Loaded out;
  std::ostringstream searched;
  for (const std::string& c : candidates()) {
    const std::string why = try_load(c, out);
    if (why.empty()) {
      searched << c << ": loaded";
      out.info.searched = searched.str();
      return out;
    }
    searched << c << ": " << why << "; ";
  }
  out.info.searched = searched.str();
  out.info.reason = "no usable libcudnn.so.9 (tried " + out.info.searched + ")";
  return out;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

std::string CudnnLibrary::describe() const {
  if (!loaded) return "cuDNN not loaded: " + reason;
  return "cuDNN " + std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
         std::to_string(version % 100) + " (cudart " + std::to_string(cudart) + ") from " + path;
}

const CudnnLibrary& cudnn_library() { return loaded().info; }

namespace cudnn_detail {

const Api& api() {
  const Loaded& l = loaded();
  if (!l.info.loaded) throw CudnnError(l.info.describe());
  return l.api;
}

int64_t version() { return loaded().info.version; }

void check(cudnnStatus_t status, const std::string& what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  const Api& a = api();
  std::string msg = what + ": " + a.get_error_string(status);
  if (a.get_last_error_string) {
    char buf[1024] = {};
    a.get_last_error_string(buf, sizeof buf);
    if (buf[0]) msg += std::string(" (") + buf + ")";
  }
  throw CudnnError(msg);
}

cudnnHandle_t handle_for(void* stream) {
  // Created once and never destroyed: the benchmarks hold it until exit, and destroying it after
  // the CUDA runtime has torn down its context at exit would fail.
  static cudnnHandle_t handle = [] {
    cudnnHandle_t h = nullptr;
    check(api().create(&h), "cudnnCreate");
    return h;
  }();
  check(api().set_stream(handle, static_cast<cudaStream_t>(stream)), "cudnnSetStream");
  return handle;
}

Desc::Desc(cudnnBackendDescriptorType_t type, std::string what) : what_(std::move(what)) {
  check(api().create_descriptor(type, &desc_), "cudnnBackendCreateDescriptor(" + what_ + ")");
}

Desc::~Desc() {
  if (desc_) api().destroy_descriptor(desc_);
}

Desc::Desc(Desc&& other) noexcept : desc_(other.desc_), what_(std::move(other.what_)) { other.desc_ = nullptr; }

Desc& Desc::set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
                const void* values, const char* attribute) {
  check(api().set_attribute(desc_, name, type, count, values),
        "cudnnBackendSetAttribute(" + what_ + ", " + attribute + ")");
  return *this;
}

Desc& Desc::set_desc(cudnnBackendAttributeName_t name, cudnnBackendDescriptor_t value, const char* attribute) {
  return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value, attribute);
}

Desc& Desc::set_i64(cudnnBackendAttributeName_t name, int64_t value, const char* attribute) {
  return set(name, CUDNN_TYPE_INT64, 1, &value, attribute);
}

Desc& Desc::set_type(cudnnBackendAttributeName_t name, cudnnDataType_t value, const char* attribute) {
  return set(name, CUDNN_TYPE_DATA_TYPE, 1, &value, attribute);
}

void Desc::finalize() { check(api().finalize(desc_), "cudnnBackendFinalize(" + what_ + ")"); }

DeviceScratch::DeviceScratch(int64_t bytes) {
  if (bytes <= 0) return;
  const cudaError_t err = cudaMalloc(&ptr_, size_t(bytes));
  if (err != cudaSuccess) {
    ptr_ = nullptr;
    throw CudnnError("cudaMalloc(" + bytes_str(bytes) + ") for cuDNN scratch: " + cudaGetErrorString(err));
  }
}

DeviceScratch::~DeviceScratch() {
  if (ptr_) cudaFree(ptr_);
}

DeviceScratch& DeviceScratch::operator=(DeviceScratch&& other) noexcept {
  if (this != &other) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = other.ptr_;
    other.ptr_ = nullptr;
  }
  return *this;
}

std::string bytes_str(int64_t bytes) {
  std::ostringstream s;
  if (bytes >= (int64_t(1) << 20))
    s << double(bytes) / double(1 << 20) << " MiB";
  else
    s << bytes << " B";
  return s.str();
}

}  // namespace cudnn_detail
}  // namespace minivl::bench
