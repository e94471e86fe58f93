// CudnnSdpa (bench/cudnn_peer.h): scaled-dot-product attention as cuDNN 9 backend graphs, in the
// operation pattern that cuDNN's fused flash-attention engines take (the one cuDNN's frontend
// builds for its SDPA node below cuDNN 9.21, where it has no single SDPA operation):
//   forward   S = (Q K^T) * scale [causal: row + Tk - Tq >= col, else -inf]; M = max_j S;
//             E = exp(S - M); Z = sum_j E; stats = M + log Z; P = E / Z (bf16); O = P V
//   backward  softmax_sum = sum_d dO * O; S as above, minus stats, masked; P = exp(S);
//             dV = P^T dO; dS = (dO V^T - softmax_sum) * P * scale; dK = dS^T Q; dQ = dS K
// K and V enter transposed (dims (B, H, D, Tk), strides of the (B, H, Tk, D) buffer): the
// backend's matmul takes B operands that way. Scores, maxima and sums are f32 virtual tensors.
// cuDNN <= 9.15's backward needs an explicit padding mask when Tk % 128 != 0 (full-length
// sequence lengths, as the frontend adds); dQ is accumulated in an f32 buffer (zeroed per call
// below cuDNN 9.6) and converted by an identity operation.
#include <cmath>
#include <limits>
#include <map>

#include "bench/cudnn_backend.h"

namespace minivl::bench {
using namespace cudnn_detail;

namespace {

std::vector<int64_t> contiguous4(int64_t b, int64_t h, int64_t s, int64_t d) { return {h * s * d, s * d, d, 1}; }

// By-value scalars of a graph; their addresses go into the variant pack.
struct Scalars {
  float scale = 1.0f, neg_inf = -INFINITY, one = 1.0f;
  int32_t kv_len = 0, q_len = 0;
};

float masked_value() {
  // cuDNN before 9.10 expects the lowest float rather than -inf in a softmax mask (as its frontend).
  return version() < 91000 ? std::numeric_limits<float>::lowest() : -std::numeric_limits<float>::infinity();
}

struct MaskIds {
  int64_t neg_inf = 0, kv_len = 0, q_len = 0;  // by-value scalars (0 when absent)
  int64_t seq_q = 0, seq_kv = 0;               // device (B, 1, 1, 1) int32 lengths when padded
};

// The masked scores: s where keep holds, the masked value elsewhere.
int64_t select_kept(OpGraph& g, int64_t s, int64_t keep, const MaskIds& m, const char* scores_name,
                    const char* select_name) {
  const int64_t out = g.virtual_like(s, CUDNN_DATA_FLOAT, scores_name);
  g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, s, m.neg_inf, keep, out, select_name);
  return out;
}

// Causal mask on the scores s (B, H, Tq, Tk): keeps (i, j) with i + Tk - Tq >= j.
int64_t causal_mask(OpGraph& g, int64_t s, bool shifted, const MaskIds& m) {
  int64_t row = g.virtual_like(s, CUDNN_DATA_INT32, "row index");
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, s, 0, 0, row, "causal row index", 2);
  const int64_t col = g.virtual_like(s, CUDNN_DATA_INT32, "col index");
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, s, 0, 0, col, "causal col index", 3);
  if (shifted) {  // bottom-right alignment when Tq != Tk
    const int64_t plus = g.virtual_like(s, CUDNN_DATA_INT32, "row + Tk");
    g.pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_INT32, row, m.kv_len, 0, plus, "row + Tk");
    row = g.virtual_like(s, CUDNN_DATA_INT32, "row + Tk - Tq");
    g.pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_INT32, plus, m.q_len, 0, row, "row + Tk - Tq");
  }
  const int64_t keep = g.virtual_like(s, CUDNN_DATA_BOOLEAN, "causal keep");
  g.pointwise(CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, 0, keep, "row >= col");
  return select_kept(g, s, keep, m, "causal scores", "causal select");
}

// Padding mask: keeps (i, j) with i < seq_q[b] and j < seq_kv[b].
int64_t padding_mask(OpGraph& g, int64_t s, const MaskIds& m) {
  const int64_t row = g.virtual_like(s, CUDNN_DATA_INT32, "padding row index");
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s, 0, 0, row, "padding row index", 2);
  const int64_t col = g.virtual_like(s, CUDNN_DATA_INT32, "padding col index");
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s, 0, 0, col, "padding col index", 3);
  const int64_t row_in = g.virtual_like(s, CUDNN_DATA_BOOLEAN, "row < seq_q");
  g.pointwise(CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, row, m.seq_q, 0, row_in, "row < seq_q");
  const int64_t col_in = g.virtual_like(s, CUDNN_DATA_BOOLEAN, "col < seq_kv");
  g.pointwise(CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, col, m.seq_kv, 0, col_in, "col < seq_kv");
  const int64_t keep = g.virtual_like(s, CUDNN_DATA_BOOLEAN, "padding keep");
  g.pointwise(CUDNN_POINTWISE_LOGICAL_AND, CUDNN_DATA_BOOLEAN, row_in, col_in, 0, keep, "row and col in");
  return select_kept(g, s, keep, m, "padded scores", "padding select");
}

struct ForwardIds {
  int64_t q = 0, k = 0, v = 0, o = 0, stats = 0, scale = 0;
  MaskIds mask;
};

ForwardIds build_forward(OpGraph& g, const SdpaProblem& p) {
  const int64_t B = p.batch, H = p.heads, Tq = p.q_len, Tk = p.kv_len, D = p.head_dim;
  ForwardIds id;
  id.q = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, Tq, D}, contiguous4(B, H, Tq, D), TensorKind::device, "Q");
  id.k = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, D, Tk}, {H * Tk * D, Tk * D, 1, D}, TensorKind::device, "K^T");
  id.v = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, Tk, D}, contiguous4(B, H, Tk, D), TensorKind::device, "V");
  id.o = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, Tq, D}, contiguous4(B, H, Tq, D), TensorKind::device, "O");
  id.stats = g.tensor(CUDNN_DATA_FLOAT, {B, H, Tq, 1}, {H * Tq, Tq, 1, 1}, TensorKind::device, "Stats");
  id.scale = g.scalar(CUDNN_DATA_FLOAT, "attn scale");
  const bool shifted = p.causal && Tq != Tk;
  if (p.causal) id.mask.neg_inf = g.scalar(CUDNN_DATA_FLOAT, "masked value");
  if (shifted) {
    id.mask.kv_len = g.scalar(CUDNN_DATA_INT32, "Tk");
    id.mask.q_len = g.scalar(CUDNN_DATA_INT32, "Tq");
  }
  const std::vector<int64_t> score = {B, H, Tq, Tk}, score_strides = {H * Tq * Tk, Tq * Tk, Tk, 1};
  const std::vector<int64_t> row = {B, H, Tq, 1}, row_strides = {H * Tq, Tq, 1, 1};
  const int64_t qk = g.tensor(CUDNN_DATA_FLOAT, score, score_strides, TensorKind::virtual_, "Q K^T");
  g.matmul(id.q, id.k, qk, "bmm1 Q K^T");
  int64_t s = g.virtual_like(qk, CUDNN_DATA_FLOAT, "scaled scores");
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, qk, id.scale, 0, s, "attn scale");
  if (p.causal) s = causal_mask(g, s, shifted, id.mask);
  const int64_t max = g.tensor(CUDNN_DATA_FLOAT, row, row_strides, TensorKind::virtual_, "row max");
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, s, max, "row max");
  const int64_t centred = g.virtual_like(s, CUDNN_DATA_FLOAT, "S - max");
  g.pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, s, max, 0, centred, "S - max");
  const int64_t e = g.virtual_like(s, CUDNN_DATA_FLOAT, "exp");
  g.pointwise(CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, centred, 0, 0, e, "exp");
  const int64_t sum = g.tensor(CUDNN_DATA_FLOAT, row, row_strides, TensorKind::virtual_, "row sum");
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, sum, "row sum");
  const int64_t log_sum = g.tensor(CUDNN_DATA_FLOAT, row, row_strides, TensorKind::virtual_, "log row sum");
  g.pointwise(CUDNN_POINTWISE_LOG, CUDNN_DATA_FLOAT, sum, 0, 0, log_sum, "log row sum");
  g.pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, max, log_sum, 0, id.stats, "stats");
  const int64_t prob = g.virtual_like(s, CUDNN_DATA_BFLOAT16, "P");
  g.pointwise(CUDNN_POINTWISE_DIV, CUDNN_DATA_FLOAT, e, sum, 0, prob, "softmax");
  g.matmul(prob, id.v, id.o, "bmm2 P V");
  return id;
}

struct BackwardIds {
  int64_t q = 0, k = 0, v = 0, o = 0, stats = 0, dout = 0, dq = 0, dk = 0, dv = 0;
  int64_t scale = 0, one = 0, softmax_sum = 0, dq_accum = 0;
  MaskIds mask;
};

BackwardIds build_backward(OpGraph& g, const SdpaProblem& p, bool padded) {
  const int64_t B = p.batch, H = p.heads, Tq = p.q_len, Tk = p.kv_len, D = p.head_dim;
  const auto dev = TensorKind::device;
  BackwardIds id;
  id.q = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, Tq, D}, contiguous4(B, H, Tq, D), dev, "Q");
  id.k = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, D, Tk}, {H * Tk * D, Tk * D, 1, D}, dev, "K^T");
  id.v = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, D, Tk}, {H * Tk * D, Tk * D, 1, D}, dev, "V^T");
  id.o = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, Tq, D}, contiguous4(B, H, Tq, D), dev, "O");
  id.dout = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, Tq, D}, contiguous4(B, H, Tq, D), dev, "dO");
  id.stats = g.tensor(CUDNN_DATA_FLOAT, {B, H, Tq, 1}, {H * Tq, Tq, 1, 1}, dev, "Stats");
  id.dq = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, Tq, D}, contiguous4(B, H, Tq, D), dev, "dQ");
  id.dk = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, Tk, D}, contiguous4(B, H, Tk, D), dev, "dK");
  id.dv = g.tensor(CUDNN_DATA_BFLOAT16, {B, H, Tk, D}, contiguous4(B, H, Tk, D), dev, "dV");
  id.scale = g.scalar(CUDNN_DATA_FLOAT, "attn scale");
  id.one = g.scalar(CUDNN_DATA_FLOAT, "one");
  const bool shifted = p.causal && Tq != Tk;
  if (p.causal || padded) id.mask.neg_inf = g.scalar(CUDNN_DATA_FLOAT, "masked value");
  if (shifted) {
    id.mask.kv_len = g.scalar(CUDNN_DATA_INT32, "Tk");
    id.mask.q_len = g.scalar(CUDNN_DATA_INT32, "Tq");
  }
  if (padded) {
    id.mask.seq_q = g.tensor(CUDNN_DATA_INT32, {B, 1, 1, 1}, {1, 1, 1, 1}, dev, "seq_len_q");
    id.mask.seq_kv = g.tensor(CUDNN_DATA_INT32, {B, 1, 1, 1}, {1, 1, 1, 1}, dev, "seq_len_kv");
  }
  const int64_t sq = id.mask.seq_q, skv = id.mask.seq_kv;  // 0 (no override) unless padded
  const std::vector<int64_t> score = {B, H, Tq, Tk}, score_strides = {H * Tq * Tk, Tq * Tk, Tk, 1};
  const std::vector<int64_t> row = {B, H, Tq, 1}, row_strides = {H * Tq, Tq, 1, 1};
  const std::vector<int64_t> score_t = {B, H, Tk, Tq}, score_t_strides = {H * Tq * Tk, Tq * Tk, 1, Tk};

  // softmax_sum = rowsum(dO * O): an f32 buffer of the plan's own.
  const int64_t dout_o =
      g.tensor(CUDNN_DATA_FLOAT, {B, H, Tq, D}, {H * Tq * D, Tq * D, H * D, 1}, TensorKind::virtual_, "dO * O");
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, id.dout, id.o, 0, dout_o, "dO * O");
  const int64_t row_sum = g.tensor(CUDNN_DATA_FLOAT, row, row_strides, TensorKind::virtual_, "sum dO * O");
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, dout_o, row_sum, "sum dO * O");
  id.softmax_sum = g.tensor(CUDNN_DATA_FLOAT, row, row_strides, dev, "softmax_sum");
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, row_sum, id.one, 0, id.softmax_sum, "softmax_sum");

  // P recomputed from the statistics.
  const int64_t qk = g.tensor(CUDNN_DATA_FLOAT, score, score_strides, TensorKind::virtual_, "Q K^T");
  g.matmul(id.q, id.k, qk, "Q K^T", sq, skv, 0);
  int64_t s = g.virtual_like(qk, CUDNN_DATA_FLOAT, "scaled scores");
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, qk, id.scale, 0, s, "attn scale");
  if (padded) s = padding_mask(g, s, id.mask);
  int64_t centred = g.virtual_like(s, CUDNN_DATA_FLOAT, "S - stats");
  g.pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, s, id.stats, 0, centred, "S - stats");
  if (padded && version() >= 90000 && version() < 91000) centred = padding_mask(g, centred, id.mask);
  if (p.causal) centred = causal_mask(g, centred, shifted, id.mask);
  const int64_t prob = g.virtual_like(centred, CUDNN_DATA_FLOAT, "P");
  g.pointwise(CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, centred, 0, 0, prob, "P = exp(S - stats)");

  // dV = P^T dO
  const int64_t prob_t = g.tensor(CUDNN_DATA_BFLOAT16, score_t, score_t_strides, TensorKind::virtual_, "P^T");
  g.reshape(prob, prob_t, "P^T");
  g.matmul(prob_t, id.dout, id.dv, "P^T dO", skv, 0, sq);

  // dS = (dO V^T - softmax_sum) * P * scale
  const int64_t dp = g.tensor(CUDNN_DATA_FLOAT, score, score_strides, TensorKind::virtual_, "dO V^T");
  g.matmul(id.dout, id.v, dp, "dO V^T", sq, skv, 0);
  const int64_t dp_centred = g.virtual_like(dp, CUDNN_DATA_FLOAT, "dP - softmax_sum");
  g.pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, dp, id.softmax_sum, 0, dp_centred, "dP - softmax_sum");
  const int64_t dp_p = g.virtual_like(dp, CUDNN_DATA_FLOAT, "(dP - softmax_sum) * P");
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, dp_centred, prob, 0, dp_p, "times P");
  const int64_t ds = g.virtual_like(dp, CUDNN_DATA_FLOAT, "dS");
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, dp_p, id.scale, 0, ds, "dS attn scale");

  // dK = dS^T Q
  const int64_t ds_t = g.tensor(CUDNN_DATA_BFLOAT16, score_t, score_t_strides, TensorKind::virtual_, "dS^T");
  g.reshape(ds, ds_t, "dS^T");
  g.matmul(ds_t, id.q, id.dk, "dS^T Q", skv, 0, sq);

  // dQ = dS K, accumulated in f32, then converted.
  const int64_t k_plain =
      g.tensor(CUDNN_DATA_FLOAT, {B, H, Tk, D}, contiguous4(B, H, Tk, D), TensorKind::virtual_, "K");
  g.reshape(id.k, k_plain, "K from K^T");
  id.dq_accum = g.tensor(CUDNN_DATA_FLOAT, {B, H, Tq, D}, contiguous4(B, H, Tq, D), dev, "dQ accum");
  g.matmul(ds, k_plain, id.dq_accum, "dS K", sq, 0, skv);
  g.pointwise(CUDNN_POINTWISE_IDENTITY, CUDNN_DATA_FLOAT, id.dq_accum, 0, 0, id.dq, "dQ");
  return id;
}

void add_mask_scalars(std::map<int64_t, const void*>& given, const MaskIds& m, const Scalars& s) {
  if (m.neg_inf) given[m.neg_inf] = &s.neg_inf;
  if (m.kv_len) given[m.kv_len] = &s.kv_len;
  if (m.q_len) given[m.q_len] = &s.q_len;
}

}  // namespace

struct CudnnSdpa::Impl {
  SdpaProblem p;
  bool with_backward = false, padded = false;
  void* stream = nullptr;
  cudnnHandle_t handle = nullptr;
  Scalars scalars;
  OpGraph fwd{"sdpa forward"}, bwd{"sdpa backward"};
  ForwardIds fi;
  BackwardIds bi;
  std::unique_ptr<Plan> fwd_plan, bwd_plan;
  DeviceScratch fwd_ws, bwd_ws, softmax_sum, dq_accum, seq_q, seq_kv;
  std::string dry_note;
};

CudnnSdpa::CudnnSdpa(const SdpaProblem& problem, bool with_backward, double scale, void* stream)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const SdpaProblem& p = problem;
  if (p.batch <= 0 || p.heads <= 0 || p.q_len <= 0 || p.kv_len <= 0 || p.head_dim <= 0)
    throw CudnnError("cuDNN SDPA: every size must be positive");
  m.p = p;
  m.with_backward = with_backward;
  m.stream = stream;
  m.scalars.scale = float(scale);
  m.scalars.neg_inf = masked_value();
  m.scalars.kv_len = int32_t(p.kv_len);
  m.scalars.q_len = int32_t(p.q_len);
  m.padded = with_backward && p.kv_len % 128 != 0 && version() <= 91500;
  m.handle = stream ? handle_for(stream) : nullptr;
  m.fi = build_forward(m.fwd, p);
  if (with_backward) m.bi = build_backward(m.bwd, p, m.padded);
  if (!m.handle && version() < 90800) {
    m.dry_note = "operations finalised; cuDNN < 9.8 finalises a graph only with a handle (a GPU)";
    return;
  }
  m.fwd.finalize(m.handle);
  if (with_backward) m.bwd.finalize(m.handle);
  if (!m.handle) {
    m.dry_note = "operation graphs finalised (" + std::to_string(m.fwd.op_count()) + " forward, " +
                 std::to_string(with_backward ? m.bwd.op_count() : 0) + " backward ops); no plan without a GPU";
    return;
  }
  m.fwd_plan = std::make_unique<Plan>(m.fwd, m.handle);
  m.fwd_ws = DeviceScratch(m.fwd_plan->workspace_bytes());
  if (with_backward) {
    m.bwd_plan = std::make_unique<Plan>(m.bwd, m.handle);
    m.bwd_ws = DeviceScratch(m.bwd_plan->workspace_bytes());
    const int64_t rows = p.batch * p.heads * p.q_len;
    m.softmax_sum = DeviceScratch(rows * int64_t(sizeof(float)));
    m.dq_accum = DeviceScratch(rows * p.head_dim * int64_t(sizeof(float)));
    if (m.padded) {
      m.seq_q = DeviceScratch(p.batch * int64_t(sizeof(int32_t)));
      m.seq_kv = DeviceScratch(p.batch * int64_t(sizeof(int32_t)));
      const std::vector<int32_t> q_lens(size_t(p.batch), int32_t(p.q_len)), kv_lens(size_t(p.batch), int32_t(p.kv_len));
      if (cudaMemcpy(m.seq_q.get(), q_lens.data(), q_lens.size() * sizeof(int32_t), cudaMemcpyHostToDevice) !=
              cudaSuccess ||
          cudaMemcpy(m.seq_kv.get(), kv_lens.data(), kv_lens.size() * sizeof(int32_t), cudaMemcpyHostToDevice) !=
              cudaSuccess)
        throw CudnnError("cuDNN SDPA: copying the sequence lengths failed");
    }
  }
}

CudnnSdpa::~CudnnSdpa() = default;

void CudnnSdpa::bind_forward(const void* q, const void* k, const void* v, void* o, void* stats) {
  Impl& m = *impl_;
  if (!m.fwd_plan) throw CudnnError("cuDNN SDPA: no plan (" + m.dry_note + ")");
  std::map<int64_t, const void*> given = {{m.fi.q, q}, {m.fi.k, k}, {m.fi.v, v}, {m.fi.o, o},
                                          {m.fi.stats, stats}, {m.fi.scale, &m.scalars.scale}};
  add_mask_scalars(given, m.fi.mask, m.scalars);
  bind_graph(m.fwd, *m.fwd_plan, given, m.fwd_ws.get());
}

void CudnnSdpa::bind_backward(const void* q, const void* k, const void* v, const void* o, const void* stats,
                              const void* dout, void* dq, void* dk, void* dv) {
  Impl& m = *impl_;
  if (!m.bwd_plan) throw CudnnError("cuDNN SDPA: no backward plan (" + m.dry_note + ")");
  const BackwardIds& b = m.bi;
  std::map<int64_t, const void*> given = {
      {b.q, q},   {b.k, k},   {b.v, v},   {b.o, o},   {b.stats, stats},         {b.dout, dout},
      {b.dq, dq}, {b.dk, dk}, {b.dv, dv}, {b.scale, &m.scalars.scale}, {b.one, &m.scalars.one},
      {b.softmax_sum, m.softmax_sum.get()}, {b.dq_accum, m.dq_accum.get()}};
  add_mask_scalars(given, b.mask, m.scalars);
  if (m.padded) {
    given[b.mask.seq_q] = m.seq_q.get();
    given[b.mask.seq_kv] = m.seq_kv.get();
  }
  bind_graph(m.bwd, *m.bwd_plan, given, m.bwd_ws.get());
}

void CudnnSdpa::forward() {
  if (!impl_->fwd_plan) throw CudnnError("cuDNN SDPA: no plan (" + impl_->dry_note + ")");
  impl_->fwd_plan->execute();
}

void CudnnSdpa::backward() {
  Impl& m = *impl_;
  if (!m.bwd_plan) throw CudnnError("cuDNN SDPA: no backward plan (" + m.dry_note + ")");
  if (version() < 90600) {  // older backwards accumulate into dQ without clearing it
    const size_t bytes = size_t(m.p.batch * m.p.heads * m.p.q_len * m.p.head_dim) * sizeof(float);
    if (cudaMemsetAsync(m.dq_accum.get(), 0, bytes, static_cast<cudaStream_t>(m.stream)) != cudaSuccess)
      throw CudnnError("cuDNN SDPA: clearing the dQ accumulator failed");
  }
  m.bwd_plan->execute();
}

std::string CudnnSdpa::note() const {
  const Impl& m = *impl_;
  if (!m.fwd_plan) return m.dry_note;
  std::string s = "forward: " + m.fwd_plan->note();
  if (m.bwd_plan)
    s += "; backward: " + m.bwd_plan->note() + (m.padded ? " (padding-mask workaround of cuDNN <= 9.15)" : "");
  return s;
}

}  // namespace minivl::bench
