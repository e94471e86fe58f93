// The kernel version registry (see kernel_versions.h for the rule it applies).
#include "core/kernel_versions.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <sstream>

#include "core/error.h"

namespace minivl {

std::string KernelVersion::status() const {
  return candidate() ? std::string("candidate: not yet run on a GPU") : verified;
}

KernelVersionFamily::KernelVersionFamily(std::string name, std::string backend, std::string size_name,
                                         std::vector<DType> dtypes, std::vector<ShapeClass> classes)
    : name_(std::move(name)),
      backend_(std::move(backend)),
      size_name_(std::move(size_name)),
      dtypes_(std::move(dtypes)),
      classes_(std::move(classes)) {}

std::string KernelVersionFamily::env_var() const {
  std::string upper = name_;
  for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
  return "MINIVL_" + upper + "_VERSION";
}

void KernelVersionFamily::add(KernelVersion version) {
  MINIVL_CHECK(version.number > 0, name_, ": kernel version numbers start at 1, got ", version.number);
  MINIVL_CHECK(!find(version.number), name_, ": version ", version.number, " is registered twice");
  MINIVL_CHECK(version.supports && !version.name.empty(), name_, " v", version.number,
               ": a version needs a name and a predicate");
  auto at = std::lower_bound(versions_.begin(), versions_.end(), version.number,
                             [](const KernelVersion& v, int n) { return v.number < n; });
  versions_.insert(at, std::move(version));
}

std::vector<int> KernelVersionFamily::numbers() const {
  std::vector<int> out;
  for (const KernelVersion& v : versions_) out.push_back(v.number);
  return out;
}

const KernelVersion* KernelVersionFamily::find(int number) const {
  for (const KernelVersion& v : versions_)
    if (v.number == number) return &v;
  return nullptr;
}

bool KernelVersionFamily::takes(int number, const VersionQuery& q) const {
  const KernelVersion* v = find(number);
  return v && v->supports(q);
}

int KernelVersionFamily::default_version(const VersionQuery& q) const {
  for (auto it = versions_.rbegin(); it != versions_.rend(); ++it)
    if (!it->candidate() && it->supports(q)) return it->number;
  return 0;
}

int KernelVersionFamily::choose(const VersionQuery& q) const {
  const int forced = override_.load();
  if (forced > 0 && takes(forced, q)) return forced;
  const int chosen = default_version(q);
  MINIVL_CHECK(chosen > 0, name_, ": no ", backend_, " version takes dtype ", dtype_name(q.dtype), " with ", size_name_,
               " = ", q.size, " (versions ", allowed(), ")");
  return chosen;
}

std::string KernelVersionFamily::allowed() const {
  std::string list, candidates;
  for (const KernelVersion& v : versions_) {
    list += (list.empty() ? "" : ", ") + std::to_string(v.number);
    if (v.candidate()) candidates += (candidates.empty() ? "" : ", ") + std::to_string(v.number);
  }
  return candidates.empty() ? list : list + " (" + candidates + ": candidate)";
}

void KernelVersionFamily::set_override(int number) {
  MINIVL_CHECK(number == 0 || find(number), name_, ": there is no ", backend_, " version ", number,
               "; the versions are ", allowed());
  override_.store(number);
}

void KernelVersionFamily::read_override(const char* value) {
  if (value == nullptr || *value == '\0') {
    override_.store(0);
    return;
  }
  const std::string text(value);
  int number = 0;
  const bool digits = text.size() <= 4 && std::all_of(text.begin(), text.end(), [](char c) {
                        return std::isdigit(static_cast<unsigned char>(c));
                      });
  if (digits) number = std::stoi(text);
  MINIVL_CHECK(digits && find(number), env_var(), "='", text, "' is not a ", backend_, " ", name_,
               " version: set it to one of ", allowed(), ", or unset it for the default");
  override_.store(number);
}

KernelVersionFamily& KernelVersionRegistry::add_family(std::string name, std::string backend, std::string size_name,
                                                       std::vector<ShapeClass> classes, std::vector<DType> dtypes) {
  MINIVL_CHECK(!find_family(name), "kernel version family '", name, "' is registered twice");
  families_.push_back(std::make_unique<KernelVersionFamily>(std::move(name), std::move(backend), std::move(size_name),
                                                            std::move(dtypes), std::move(classes)));
  return *families_.back();
}

const KernelVersionFamily* KernelVersionRegistry::find_family(const std::string& name) const {
  for (const auto& f : families_)
    if (f->name() == name) return f.get();
  return nullptr;
}

const KernelVersionFamily& KernelVersionRegistry::family(const std::string& name) const {
  const KernelVersionFamily* f = find_family(name);
  if (!f) {
    std::string names;
    for (const auto& g : families_) names += (names.empty() ? "" : ", ") + g->name();
    MINIVL_FAIL("no kernel family '", name, "' has numbered versions (registered: ", names.empty() ? "none" : names,
                ")");
  }
  return *f;
}

KernelVersionFamily& KernelVersionRegistry::family(const std::string& name) {
  return const_cast<KernelVersionFamily&>(static_cast<const KernelVersionRegistry*>(this)->family(name));
}

void KernelVersionRegistry::read_environment() {
  for (const auto& f : families_) f->read_override(std::getenv(f->env_var().c_str()));
}

namespace {

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// Where `number` is the default: "f64 at every D; f32, bf16, f16 at D > 128", or "" for nowhere.
std::string default_classes(const KernelVersionFamily& f, int number) {
  std::map<std::vector<std::string>, std::vector<std::string>> dtypes_by_classes;
  std::vector<std::vector<std::string>> order;
  for (DType dt : f.dtypes()) {
    std::vector<std::string> labels;
    for (const ShapeClass& c : f.classes())
      if (f.default_version({dt, c.size}) == number) labels.push_back(c.label);
    if (labels.empty()) continue;
    if (labels.size() == f.classes().size()) labels = {"every " + f.size_name()};
    if (!dtypes_by_classes.count(labels)) order.push_back(labels);
    dtypes_by_classes[labels].push_back(dtype_name(dt));
  }
  std::vector<std::string> parts;
  for (const auto& labels : order) parts.push_back(join(dtypes_by_classes[labels], ", ") + " at " + join(labels, ", "));
  return join(parts, "; ");
}

}  // namespace

std::string KernelVersionRegistry::describe() const {
  std::ostringstream os;
  os << "Kernel versions. MINIVL_<FAMILY>_VERSION=N runs version N wherever it takes the call; every other call\n"
        "runs the default: the newest verified version that takes it (a CUDA version: its parity passed on a GPU;\n"
        "a CPU version: its tests). A candidate (a CUDA version not yet run on a GPU) runs only when asked for by\n"
        "number.\n";
  if (families_.empty()) os << "\nNo kernel family has numbered versions in this build.\n";
  for (const auto& f : families_) {
    os << "\n"
       << f->name() << " (" << f->backend() << ", chosen by dtype and " << f->size_name() << "): " << f->env_var();
    if (f->override_version() > 0) {
      os << "=" << f->override_version() << " is set";
    } else {
      os << " unset";
    }
    os << "\n";
    for (const KernelVersion& v : f->versions()) {
      const std::string where = default_classes(*f, v.number);
      os << "  v" << v.number << "  " << v.name << (where.empty() ? "" : "  [default]") << "\n";
      os << "      takes    " << v.takes << "\n";
      os << "      status   " << v.status() << "\n";
      os << "      default  "
         << (!where.empty()  ? where
             : v.candidate() ? std::string("never: a candidate is not a default")
                             : std::string("nowhere: a newer verified version takes each of its calls"))
         << "\n";
      if (!v.note.empty()) os << "      note     " << v.note << "\n";
    }
  }
  return os.str();
}

KernelVersionRegistry& kernel_versions() {
  static const std::unique_ptr<KernelVersionRegistry> registry = [] {
    auto r = std::make_unique<KernelVersionRegistry>();
    register_cpu_kernel_versions(*r);
    register_cuda_kernel_versions(*r);
    r->read_environment();
    return r;
  }();
  return *registry;
}

}  // namespace minivl
