#include "tools/op_runner.h"

#include <optional>
#include <sstream>
#include <type_traits>

#include "core/error.h"
#include "core/ops.h"

namespace minivl::tools {

const Tensor& OpCall::input(const std::string& name) const {
  auto it = inputs.find(name);
  if (it == inputs.end()) {
    std::string have;
    for (const auto& n : input_order) have += (have.empty() ? "" : ", ") + n;
    MINIVL_FAIL(op, ": missing input tensor '", name, "' (the input file holds: ", have.empty() ? "nothing" : have,
                ")");
  }
  return it->second;
}

Tensor OpCall::optional_input(const std::string& name) const {
  auto it = inputs.find(name);
  return it == inputs.end() ? Tensor() : it->second;
}

std::string OpCall::attr(const std::string& name, const std::string& fallback) const {
  auto it = attrs.find(name);
  return it == attrs.end() ? fallback : it->second;
}

namespace {

// The whole of `text` read by std::stod / std::stoll; nullopt where it does not parse or has
// characters left over.
template <typename T>
std::optional<T> parse_whole(const std::string& text) {
  try {
    size_t used = 0;
    T v;
    if constexpr (std::is_same_v<T, double>) v = std::stod(text, &used);
    else v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

double OpCall::attr_double(const std::string& name, double fallback) const {
  auto it = attrs.find(name);
  if (it == attrs.end()) return fallback;
  if (std::optional<double> v = parse_whole<double>(it->second)) return *v;
  MINIVL_FAIL(op, ": attribute ", name, "='", it->second, "' is not a number");
}

int64_t OpCall::attr_int(const std::string& name, int64_t fallback) const {
  auto it = attrs.find(name);
  if (it == attrs.end()) return fallback;
  if (std::optional<long long> v = parse_whole<long long>(it->second)) return *v;
  MINIVL_FAIL(op, ": attribute ", name, "='", it->second, "' is not an integer");
}

bool OpCall::attr_bool(const std::string& name, bool fallback) const {
  auto it = attrs.find(name);
  if (it == attrs.end()) return fallback;
  const std::string& v = it->second;
  if (v == "1" || v == "true" || v == "True") return true;
  if (v == "0" || v == "false" || v == "False") return false;
  MINIVL_FAIL(op, ": attribute ", name, "='", v, "' is not a boolean (true/false/1/0)");
}

std::vector<int64_t> OpCall::attr_ints(const std::string& name, std::vector<int64_t> fallback) const {
  auto it = attrs.find(name);
  if (it == attrs.end()) return fallback;
  std::vector<int64_t> out;
  std::string s = it->second;
  for (char& c : s)
    if (c == '[' || c == ']' || c == '(' || c == ')') c = ' ';
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t a = item.find_first_not_of(' '), b = item.find_last_not_of(' ');
    if (a == std::string::npos) continue;
    item = item.substr(a, b - a + 1);
    std::optional<long long> v = parse_whole<long long>(item);
    if (!v) MINIVL_FAIL(op, ": attribute ", name, "='", it->second, "' is not a comma-separated list of integers");
    out.push_back(*v);
  }
  return out;
}

namespace {

NamedTensors one(Tensor t) { return {{"out", t}}; }

OpFn unary(Tensor (*fn)(const Tensor&)) {
  return [fn](const OpCall& c) { return one(fn(c.input("x"))); };
}
OpFn binary(Tensor (*fn)(const Tensor&, const Tensor&)) {
  return [fn](const OpCall& c) { return one(fn(c.input("a"), c.input("b"))); };
}
std::vector<Tensor> ordered_inputs(const OpCall& c) {
  std::vector<Tensor> ts;
  for (const auto& n : c.input_order)
    if (n.rfind("grad_", 0) != 0) ts.push_back(c.inputs.at(n));
  return ts;
}
Reduction parse_reduction(const OpCall& c) {
  std::string r = c.attr("reduction", "mean");
  if (r == "mean") return Reduction::mean;
  if (r == "sum") return Reduction::sum;
  if (r == "none") return Reduction::none;
  MINIVL_FAIL(c.op, ": reduction must be mean, sum or none, got '", r, "'");
}
std::optional<double> optional_attr(const OpCall& c, const char* name) {
  if (!c.attrs.count(name)) return std::nullopt;
  return c.attr_double(name, 0.0);
}

}  // namespace

const std::map<std::string, OpFn>& op_runner_table() {
  static const std::map<std::string, OpFn> table = {
      {"reshape", [](const OpCall& c) { return one(c.input("x").reshape(c.attr_ints("shape", {-1}))); }},
      {"permute", [](const OpCall& c) { return one(c.input("x").permute(c.attr_ints("dims", {}))); }},
      {"transpose", [](const OpCall& c) {
         return one(c.input("x").transpose(c.attr_int("dim0", -2), c.attr_int("dim1", -1)));
       }},
      {"narrow", [](const OpCall& c) {
         return one(c.input("x").narrow(c.attr_int("dim", 0), c.attr_int("start", 0), c.attr_int("length", 1)));
       }},
      {"expand", [](const OpCall& c) { return one(c.input("x").expand(c.attr_ints("shape", {}))); }},
      {"squeeze", [](const OpCall& c) {
         return one(c.attrs.count("dim") ? c.input("x").squeeze(c.attr_int("dim", 0)) : c.input("x").squeeze());
       }},
      {"unsqueeze", [](const OpCall& c) { return one(c.input("x").unsqueeze(c.attr_int("dim", 0))); }},
      {"contiguous", [](const OpCall& c) { return one(c.input("x").contiguous()); }},
      {"to_dtype", [](const OpCall& c) { return one(c.input("x").to(dtype_from_name(c.attr("dtype", "f32")))); }},
      {"add", binary(add)},
      {"sub", binary(sub)},
      {"mul", binary(mul)},
      {"div", binary(div)},
      {"neg", unary(neg)},
      {"exp", unary(exp)},
      {"log", unary(log)},
      {"sqrt", unary(sqrt)},
      {"rsqrt", unary(rsqrt)},
      {"abs", unary(abs)},
      {"tanh", unary(tanh)},
      {"sigmoid", unary(sigmoid)},
      {"relu", unary(relu)},
      {"gelu", [](const OpCall& c) {
         std::string approx = c.attr("approximate", "none");
         return one(approx == "tanh" ? gelu_tanh(c.input("x")) : gelu(c.input("x")));
       }},
      {"gelu_tanh", unary(gelu_tanh)},
      {"quick_gelu", unary(quick_gelu)},
      {"pow", [](const OpCall& c) { return one(pow(c.input("x"), c.attr_double("exponent", 2.0))); }},
      {"clamp", [](const OpCall& c) {
         return one(clamp(c.input("x"), optional_attr(c, "min"), optional_attr(c, "max")));
       }},
      {"where", [](const OpCall& c) { return one(where(c.input("cond"), c.input("a"), c.input("b"))); }},
      {"masked_fill", [](const OpCall& c) {
         return one(masked_fill(c.input("x"), c.input("mask"), c.attr_double("value", 0.0)));
       }},
      {"sum", [](const OpCall& c) {
         return one(sum(c.input("x"), c.attr_ints("dim", {}), c.attr_bool("keepdim", false)));
       }},
      {"mean", [](const OpCall& c) {
         return one(mean(c.input("x"), c.attr_ints("dim", {}), c.attr_bool("keepdim", false)));
       }},
      {"max", [](const OpCall& c) {
         return one(max(c.input("x"), c.attr_ints("dim", {}), c.attr_bool("keepdim", false)));
       }},
      {"var", [](const OpCall& c) {
         return one(var(c.input("x"), c.attr_ints("dim", {}), c.attr_int("correction", 1),
                        c.attr_bool("keepdim", false)));
       }},
      {"argmax", [](const OpCall& c) {
         return one(argmax(c.input("x"), c.attr_int("dim", -1), c.attr_bool("keepdim", false)));
       }},
      {"topk", [](const OpCall& c) {
         auto [v, i] = topk(c.input("x"), c.attr_int("k", 1), c.attr_int("dim", -1));
         return NamedTensors{{"values", v}, {"indices", i}};
       }},
      {"matmul", binary(matmul)},
      {"softmax", [](const OpCall& c) { return one(softmax(c.input("x"), c.attr_int("dim", -1))); }},
      {"log_softmax", [](const OpCall& c) { return one(log_softmax(c.input("x"), c.attr_int("dim", -1))); }},
      {"cross_entropy", [](const OpCall& c) {
         return one(cross_entropy(c.input("logits"), c.input("target"), c.attr_int("ignore_index", -100),
                                  c.attr_double("label_smoothing", 0.0), parse_reduction(c)));
       }},
      {"embedding", [](const OpCall& c) { return one(embedding(c.input("weight"), c.input("ids"))); }},
      {"cat", [](const OpCall& c) { return one(cat(ordered_inputs(c), c.attr_int("dim", 0))); }},
      {"stack", [](const OpCall& c) { return one(stack(ordered_inputs(c), c.attr_int("dim", 0))); }},
      {"split", [](const OpCall& c) {
         std::vector<Tensor> parts = c.attrs.count("sizes")
                                         ? split(c.input("x"), c.attr_ints("sizes", {}), c.attr_int("dim", 0))
                                         : split(c.input("x"), c.attr_int("split_size", 1), c.attr_int("dim", 0));
         NamedTensors out;
         for (size_t i = 0; i < parts.size(); ++i) out.emplace_back("out" + std::to_string(i), parts[i]);
         return out;
       }},
      {"dropout", [](const OpCall& c) {
         std::optional<uint64_t> seed;
         if (c.attrs.count("seed")) seed = uint64_t(c.attr_int("seed", 0));
         return one(dropout(c.input("x"), c.attr_double("p", 0.5), c.attr_bool("training", true), seed));
       }},
      {"layernorm", [](const OpCall& c) {
         return one(layernorm(c.input("x"), c.optional_input("weight"), c.optional_input("bias"),
                              c.attr_double("eps", 1e-5)));
       }},
      {"add_layernorm", [](const OpCall& c) {
         auto [sum, out] = add_layernorm(c.input("x"), c.input("residual"), c.optional_input("weight"),
                                         c.optional_input("bias"), c.attr_double("eps", 1e-5));
         return NamedTensors{{"sum", sum}, {"out", out}};
       }},
      {"clip_loss", [](const OpCall& c) {
         return one(clip_loss(c.input("image"), c.input("text"), c.input("logit_scale")));
       }},
      {"siglip_loss", [](const OpCall& c) {
         return one(siglip_loss(c.input("image"), c.input("text"), c.input("logit_scale"), c.input("logit_bias")));
       }},
      {"attention", [](const OpCall& c) {
         AttentionOptions o;
         o.causal = c.attr_bool("causal", false);
         o.key_padding_mask = c.optional_input("key_padding_mask");
         o.scale = optional_attr(c, "scale");
         return one(attention(c.input("q"), c.input("k"), c.input("v"), o));
       }},
  };
  return table;
}

NamedTensors run_op(OpCall call, bool grad) {
  const auto& table = op_runner_table();
  auto it = table.find(call.op);
  if (it == table.end()) {
    std::string names;
    for (const auto& [n, fn] : table) names += (names.empty() ? "" : ", ") + n;
    MINIVL_FAIL("op: unknown op '", call.op, "' (known: ", names, ")");
  }
  if (grad) {
    for (auto& [name, t] : call.inputs)
      if (name.rfind("grad_", 0) != 0 && t.is_floating_point()) t.requires_grad_();
  }
  NamedTensors outputs = it->second(call);
  if (!grad) return outputs;

  std::vector<Tensor> roots, seeds;
  for (const auto& [name, out] : outputs) {
    Tensor g = call.optional_input("grad_" + name);
    if (!g.defined()) continue;
    MINIVL_CHECK(g.shape() == out.shape(), call.op, ": grad_", name, " has shape ", g.shape_str(), " but output '",
                 name, "' has ", out.shape_str());
    if (!out.requires_grad()) continue;
    roots.push_back(out);
    seeds.push_back(g.to(out.dtype()));
  }
  MINIVL_CHECK(!seeds.empty() || outputs.empty(), call.op, ": --grad needs grad_out (or grad_<output>) in the input file");
  if (!roots.empty()) run_backward(roots, seeds, false);
  for (const auto& name : call.input_order) {
    if (name.rfind("grad_", 0) == 0) continue;
    const Tensor& t = call.inputs.at(name);
    if (!t.is_floating_point()) continue;
    Tensor g = t.grad();
    outputs.emplace_back("grad." + name, g.defined() ? g : zeros_like(t));
  }
  return outputs;
}

}  // namespace minivl::tools
