#include "core/dispatch.h"

#include "core/kernel_versions.h"

namespace minivl {
namespace {

const OpInfo kOpInfos[] = {
#define MINIVL_OP(name, family, differentiable) {#name, KernelFamily::family, differentiable},
#include "core/ops.def"
#undef MINIVL_OP
};

KernelTable make_table() {
  kernel_versions();  // the versioned slots ask it on every call; a bad MINIVL_<FAMILY>_VERSION fails here
  KernelTable table;
  register_cpu_kernels(table);
  register_cuda_kernels(table);
  return table;
}

// Which slots a family needs filled on device type d. No default case, and a missing family is a
// compile error (not only -Wall's warning), so a family added to MINIVL_KERNEL_FAMILIES cannot be
// forgotten here.
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
bool family_available(const KernelTable& t, KernelFamily family, int d) {
  switch (family) {
    case KernelFamily::view: return true;
    case KernelFamily::composed: return t.copy[d] && t.binary[d] && t.unary[d] && t.reduce[d];
    case KernelFamily::copy: return t.copy[d] != nullptr;
    case KernelFamily::fill: return t.fill[d] && t.random_fill[d];
    case KernelFamily::unary: return t.unary[d] && t.unary_backward[d];
    case KernelFamily::binary: return t.binary[d] != nullptr;
    case KernelFamily::where: return t.where[d] != nullptr;
    case KernelFamily::reduce: return t.reduce[d] != nullptr;
    case KernelFamily::arg_reduce: return t.argmax[d] && t.topk[d];
    case KernelFamily::matmul: return t.gemm[d] != nullptr;
    case KernelFamily::softmax: return t.softmax[d] && t.softmax_backward[d];
    case KernelFamily::cross_entropy: return t.cross_entropy[d] && t.cross_entropy_backward[d];
    case KernelFamily::embedding: return t.embedding[d] && t.embedding_backward[d];
    case KernelFamily::dropout: return t.dropout[d] != nullptr;
    case KernelFamily::layernorm: return t.layernorm[d] && t.layernorm_backward[d];
    case KernelFamily::contrastive:
      return t.clip_loss[d] && t.clip_loss_backward[d] && t.siglip_loss[d] && t.siglip_loss_backward[d];
    case KernelFamily::attention: return t.attention[d] && t.attention_backward[d];
  }
  return false;
}
#pragma GCC diagnostic pop

}  // namespace

const OpInfo& op_info(OpId op) { return kOpInfos[int(op)]; }

const char* kernel_family_name(KernelFamily family) {
  static const char* const names[] = {
#define MINIVL_FAMILY_NAME(name) #name,
      MINIVL_KERNEL_FAMILIES(MINIVL_FAMILY_NAME)
#undef MINIVL_FAMILY_NAME
  };
  return names[int(family)];
}

const KernelTable& kernels() {
  static const KernelTable table = make_table();
  return table;
}

bool op_available(OpId op, DeviceType device) {
  return family_available(kernels(), op_info(op).family, int(device));
}

std::string missing_kernel_message(const char* op, Device device) {
  std::string msg = std::string(op) + ": no kernel for device " + device.str();
  if (device.is_cuda() && !cuda_available()) msg += " (" + cuda_unavailable_reason() + ")";
  return msg;
}

}  // namespace minivl
