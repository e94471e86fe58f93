// Tensors on their own: the stride/broadcast helpers, factories, views (and
// that they share storage), dtype conversions and names, printing, item/to_vector, and the
// errors of views, of dims on 0-d tensors and of a host allocation too large to make.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using minivl::testing::error_of;
using minivl::testing::check_error;
using minivl::testing::check_values;

namespace {
// 0, 1, ..., n-1 as f32 with the given shape.
Tensor iota(const Shape& shape, DType dtype = DType::f32) {
  return arange(0, double(shape_numel(shape)), 1, dtype).reshape(shape);
}
bool shares_storage(const Tensor& a, const Tensor& b) { return a.storage().get() == b.storage().get(); }
}  // namespace

TEST_SUITE("tensor") {

TEST_CASE("broadcast_shapes follows numpy rules and names the op on failure") {
  CHECK(broadcast_shapes({3, 1}, {1, 4}, "add") == Shape{3, 4});
  CHECK(broadcast_shapes({2, 3, 4}, {4}, "mul") == Shape{2, 3, 4});
  CHECK(broadcast_shapes({}, {2, 2}, "add") == Shape{2, 2});
  CHECK(broadcast_shapes({5, 1, 3}, {2, 1}, "add") == Shape{5, 2, 3});
  CHECK(broadcast_shapes({5, 0}, {1}, "add") == Shape{5, 0});
  CHECK(broadcast_shapes({1}, {0}, "add") == Shape{0});
  check_error([] { broadcast_shapes({3}, {4}, "myop"); }, {"myop", "(3,)", "(4,)"});
  check_error([] { broadcast_shapes({2, 3}, {3, 3}, "sub"); }, {"sub", "(2, 3)", "(3, 3)"});
}

TEST_CASE("contiguous_strides are row-major and treat size 0 as 1") {
  CHECK(contiguous_strides({2, 3, 4}) == Shape{12, 4, 1});
  CHECK(contiguous_strides({5}) == Shape{1});
  CHECK(contiguous_strides({}) == Shape{});
  CHECK(contiguous_strides({2, 0, 3}) == Shape{3, 3, 1});
  CHECK(contiguous_strides({1, 1}) == Shape{1, 1});
}

TEST_CASE("wrap_dim normalises negative dims and rejects out-of-range ones") {
  CHECK(wrap_dim(-1, 3, "op") == 2);
  CHECK(wrap_dim(-3, 3, "op") == 0);
  CHECK(wrap_dim(2, 3, "op") == 2);
  CHECK(wrap_dim(0, 0, "op") == 0);   // a 0-d tensor accepts 0 and -1
  CHECK(wrap_dim(-1, 0, "op") == 0);
  check_error([] { wrap_dim(3, 3, "softmax"); }, {"softmax", "3"});
  check_error([] { wrap_dim(-4, 3, "sum"); }, {"sum", "-4"});
  check_error([] { wrap_dim(1, 0, "op"); }, {"op"});
}

TEST_CASE("shape_numel and shape_to_string") {
  CHECK(shape_numel({}) == 1);
  CHECK(shape_numel({2, 3, 4}) == 24);
  CHECK(shape_numel({2, 0, 5}) == 0);
  CHECK(shape_to_string({2, 3}) == "(2, 3)");
  CHECK(shape_to_string({3}) == "(3,)");
  CHECK(shape_to_string({}) == "()");
}

TEST_CASE("factories: zeros, ones, full, scalar_tensor, *_like, empty") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == DType::f32);
  CHECK(z.is_contiguous());
  check_values(z, std::vector<double>(6, 0.0));
  check_values(ones({4}, DType::f64), {1, 1, 1, 1});
  Tensor f = full({2, 2}, 2.5, DType::bf16);
  CHECK(f.dtype() == DType::bf16);
  check_values(f, {2.5, 2.5, 2.5, 2.5});
  check_values(full({3}, 7, DType::i64), {7, 7, 7});
  Tensor s = scalar_tensor(3.25);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.25);
  Tensor zl = zeros_like(full({2}, 1, DType::i32));
  CHECK(zl.dtype() == DType::i32);
  check_values(zl, {0, 0});
  check_values(ones_like(zeros({1, 2}, DType::f64)), {1, 1});
  Tensor e = empty({3, 0, 2});
  CHECK(e.numel() == 0);
  CHECK(e.shape() == Shape{3, 0, 2});
  CHECK(e.desc() == "f32 (3, 0, 2) on cpu");
}

TEST_CASE("factories: arange, from_vector, from_vector_i64") {
  check_values(arange(0, 5), {0, 1, 2, 3, 4});
  check_values(arange(1, 2, 0.25), {1, 1.25, 1.5, 1.75});
  check_values(arange(5, 0, -2), {5, 3, 1});
  CHECK(arange(3, 3).numel() == 0);
  CHECK(arange(0, 4, 1, DType::i64).dtype() == DType::i64);
  check_error([] { arange(0, 1, 0); }, {"arange"});

  Tensor v = from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  CHECK(v.shape() == Shape{2, 3});
  CHECK(v.dtype() == DType::f64);
  check_values(v, {1, 2, 3, 4, 5, 6});
  check_error([] { from_vector({1, 2, 3}, {2, 2}); }, {"from_vector", "3", "(2, 2)"});

  const int64_t big = (int64_t(1) << 53) + 1;  // not representable in f64: must stay exact
  Tensor i = from_vector_i64({big, -3}, {2});
  CHECK(i.dtype() == DType::i64);
  CHECK(i.data<int64_t>()[0] == big);
  CHECK(i.data<int64_t>()[1] == -3);
  CHECK(from_vector_i64({1, 2}, {2}, DType::i32).dtype() == DType::i32);
}

TEST_CASE("rand is uniform in [0, 1) and randn is standard normal") {
  Tensor u = rand({20000});
  std::vector<double> uv = u.to_vector();
  double mean = 0, lo = 1, hi = 0;
  for (double x : uv) {
    mean += x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  mean /= double(uv.size());
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(mean == doctest::Approx(0.5).epsilon(0.02));

  std::vector<double> nv = randn({20000}, DType::f64).to_vector();
  double m = 0, sq = 0;
  for (double x : nv) m += x;
  m /= double(nv.size());
  for (double x : nv) sq += (x - m) * (x - m);
  double sd = std::sqrt(sq / double(nv.size()));
  CHECK(std::abs(m) < 0.03);
  CHECK(sd == doctest::Approx(1.0).epsilon(0.03));
  // Two draws differ (the generator advances).
  CHECK(rand({4}).to_vector() != rand({4}).to_vector());
}

TEST_CASE("reshape of a contiguous tensor is a view; -1 is inferred") {
  Tensor x = iota({2, 6});
  Tensor r = x.reshape({3, -1});
  CHECK(r.shape() == Shape{3, 4});
  CHECK(r.strides() == Shape{4, 1});
  CHECK(shares_storage(r, x));
  CHECK(r.data_ptr() == x.data_ptr());
  check_values(r, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(x.reshape({12}).shape() == Shape{12});
  CHECK(x.reshape({2, 2, 3}).strides() == Shape{6, 3, 1});
  CHECK(iota({1}).reshape({}).dim() == 0);
}

TEST_CASE("reshape of a non-viewable tensor copies; view_as_shape refuses") {
  Tensor x = iota({2, 3});
  Tensor t = x.t();  // (3, 2), strides (1, 3)
  Tensor r = t.reshape({6});
  CHECK_FALSE(shares_storage(r, x));
  check_values(r, {0, 3, 1, 4, 2, 5});
  check_error([&] { t.view_as_shape({6}); }, {"view", "(3, 2)", "(6,)"});
  // A strided but mergeable case is still a view: every other row of (4, 6).
  Tensor rows = iota({4, 6}).slice(0, 0, 4, 2);  // (2, 6), strides (12, 1)
  Tensor v = rows.view_as_shape({2, 2, 3});
  CHECK(shares_storage(v, rows));
  CHECK(v.strides() == Shape{12, 3, 1});
  check_values(v, {0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17});
  // ...but merging the two rows needs a copy.
  check_error([&] { rows.view_as_shape({12}); }, {"view"});
  check_values(rows.reshape({12}), {0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17});
}

TEST_CASE("permute and transpose swap sizes and strides") {
  Tensor x = iota({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK(shares_storage(p, x));
  CHECK_FALSE(p.is_contiguous());
  // p[k][i][j] == x[i][j][k] == 12 i + 4 j + k
  std::vector<double> pv = p.to_vector();
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) CHECK(pv[size_t(k * 6 + i * 3 + j)] == 12 * i + 4 * j + k);
  Tensor t = iota({2, 3}).t();
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.strides() == Shape{1, 3});
  check_values(t, {0, 3, 1, 4, 2, 5});
  CHECK(x.transpose(0, -1).shape() == Shape{4, 3, 2});
  check_error([&] { x.permute({0, 0, 1}); }, {"permute"});
  check_error([&] { x.permute({0, 1}); }, {"permute"});
}

TEST_CASE("narrow and slice (with step and negative bounds) are views") {
  Tensor x = iota({4, 5});
  Tensor n = x.narrow(1, 1, 3);
  CHECK(n.shape() == Shape{4, 3});
  CHECK(n.offset() == 1);
  CHECK(shares_storage(n, x));
  check_values(n, {1, 2, 3, 6, 7, 8, 11, 12, 13, 16, 17, 18});
  Tensor a = arange(0, 10);
  check_values(a.slice(0, 1, 8, 3), {1, 4, 7});
  check_values(a.slice(0, 1, 9, 3), {1, 4, 7});
  check_values(a.slice(0, -3, 10), {7, 8, 9});
  check_values(a.slice(0, 0, -8), {0, 1});
  CHECK(a.slice(0, 5, 2).numel() == 0);
  Tensor s = x.slice(1, 0, 5, 2);  // columns 0, 2, 4
  CHECK(s.strides() == Shape{5, 2});
  check_values(s, {0, 2, 4, 5, 7, 9, 10, 12, 14, 15, 17, 19});
  check_values(s.slice(0, 1, 4, 2), {5, 7, 9, 15, 17, 19});
}

TEST_CASE("select removes the dim; negative indices count from the end") {
  Tensor x = iota({3, 4});
  Tensor row = x.select(0, 1);
  CHECK(row.shape() == Shape{4});
  CHECK(shares_storage(row, x));
  check_values(row, {4, 5, 6, 7});
  check_values(x.select(1, -1), {3, 7, 11});
  check_error([&] { x.select(0, 3); }, {"select", "3"});
  check_error([&] { x.select(1, -5); }, {"select"});
}

TEST_CASE("expand broadcasts with stride 0 and adds leading dims") {
  Tensor c = from_vector({1, 2, 3}, {3, 1});
  Tensor e = c.expand({3, 4});
  CHECK(e.shape() == Shape{3, 4});
  CHECK(e.strides() == Shape{1, 0});
  CHECK(shares_storage(e, c));
  check_values(e, {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
  Tensor r = from_vector({1, 2, 3}, {3}).expand({2, 3});
  CHECK(r.strides() == Shape{0, 1});
  check_values(r, {1, 2, 3, 1, 2, 3});
  CHECK(c.expand({2, -1, 5}).shape() == Shape{2, 3, 5});
  check_error([&] { c.expand({4, 4}); }, {"expand", "(3, 1)", "(4, 4)"});
  check_error([&] { c.expand({4}); }, {"expand"});
}

TEST_CASE("squeeze, unsqueeze and flatten") {
  Tensor x = iota({1, 3, 1});
  CHECK(x.squeeze().shape() == Shape{3});
  CHECK(x.squeeze(0).shape() == Shape{3, 1});
  CHECK(x.squeeze(-1).shape() == Shape{1, 3});
  CHECK(x.squeeze(1).shape() == Shape{1, 3, 1});  // not size 1: unchanged
  CHECK(shares_storage(x.squeeze(), x));
  Tensor v = arange(0, 3);
  CHECK(v.unsqueeze(0).shape() == Shape{1, 3});
  CHECK(v.unsqueeze(1).shape() == Shape{3, 1});
  CHECK(v.unsqueeze(-1).shape() == Shape{3, 1});
  check_values(v.unsqueeze(0), {0, 1, 2});
  // unsqueeze of a non-contiguous view keeps element positions.
  Tensor t = iota({2, 3}).t().unsqueeze(1);  // (3, 1, 2)
  CHECK(t.shape() == Shape{3, 1, 2});
  check_values(t, {0, 3, 1, 4, 2, 5});
  check_values(t.contiguous(), {0, 3, 1, 4, 2, 5});

  Tensor y = iota({2, 3, 4});
  CHECK(y.flatten().shape() == Shape{24});
  CHECK(y.flatten(1).shape() == Shape{2, 12});
  CHECK(y.flatten(0, 1).shape() == Shape{6, 4});
  CHECK(shares_storage(y.flatten(0, 1), y));
  Tensor yt = y.transpose(0, 2);  // (4, 3, 2), not flattenable without a copy
  std::vector<double> want;
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) want.push_back(12 * i + 4 * j + k);
  check_values(yt.flatten(), want);
  CHECK(scalar_tensor(2).flatten().shape() == Shape{1});
}

TEST_CASE("contiguous returns the same tensor when already contiguous, else a packed copy") {
  Tensor x = iota({2, 3});
  CHECK(x.contiguous().same(x));
  Tensor c = x.t().contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.strides() == Shape{2, 1});
  CHECK_FALSE(shares_storage(c, x));
  check_values(c, {0, 3, 1, 4, 2, 5});
  // A size-1 dim's stride does not matter for contiguity.
  CHECK(iota({3, 1}).expand({3, 1}).is_contiguous());
  CHECK_FALSE(iota({3, 1}).expand({3, 2}).is_contiguous());
}

TEST_CASE("writes through a view are seen by the base and by other views") {
  Tensor x = zeros({3, 4});
  x.narrow(1, 1, 2).fill_(5);
  check_values(x, {0, 5, 5, 0, 0, 5, 5, 0, 0, 5, 5, 0});
  x.select(0, 2).copy_(from_vector({1, 2, 3, 4}, {4}));
  check_values(x.select(0, 2), {1, 2, 3, 4});
  x.t().select(0, 0).copy_(from_vector({9}, {1}));  // column 0, broadcast
  check_values(x, {9, 5, 5, 0, 9, 5, 5, 0, 9, 2, 3, 4});
  Tensor r = x.reshape({12});
  r.slice(0, 0, 12, 4).fill_(-1);
  check_values(x.select(1, 0), {-1, -1, -1});
  // The version counter is shared by views (it lives on the storage).
  uint64_t before = x.storage()->version();
  x.t().fill_(0);
  CHECK(x.storage()->version() > before);
}

TEST_CASE("detach shares storage and drops history") {
  Tensor x = ones({2}).requires_grad_();
  Tensor y = x * 3.0;
  Tensor d = y.detach();
  CHECK(shares_storage(d, y));
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
}

TEST_CASE("to(dtype): f32 <-> f64 round trips exactly; integers truncate") {
  std::vector<double> vals = {0.1, -2.5, 3.0, 1e-3};
  Tensor f = from_vector(vals, {4});
  Tensor d = f.to(DType::f64);
  CHECK(d.dtype() == DType::f64);
  for (size_t i = 0; i < vals.size(); ++i) CHECK(d.to_vector()[i] == double(float(vals[i])));
  CHECK(d.to(DType::f32).to_vector() == f.to_vector());
  CHECK(f.to(DType::f32).same(f));  // same dtype: no copy
  check_values(from_vector({2.7, -2.7, 0.0}, {3}).to(DType::i64), {2, -2, 0});
  check_values(from_vector_i64({-7, 40000}, {2}).to(DType::f32), {-7, 40000});
  check_values(from_vector_i64({-7, 300}, {2}).to(DType::i32), {-7, 300});
}

TEST_CASE("to(bf16) rounds to nearest even and keeps inf/NaN") {
  const double inf = std::numeric_limits<double>::infinity();
  // bf16 has 8 significant bits: around 1 the spacing is 2^-7.
  std::vector<double> in = {1.0 + std::ldexp(1, -8),       // halfway: ties to even -> 1
                            1.0 + 3 * std::ldexp(1, -8),   // halfway: ties to even -> 1 + 2^-6
                            1.0 + 3 * std::ldexp(1, -9),   // above halfway -> 1 + 2^-7
                            3.14159, -0.1, inf, -inf, 0.0};
  std::vector<double> want = {1.0, 1.0 + std::ldexp(1, -6), 1.0 + std::ldexp(1, -7),
                              3.140625,  // 201/128 * 2
                              -0.10009765625,  // -(205/128) * 2^-4 (0.1 * 2^4 * 128 = 204.8 -> 205)
                              inf, -inf, 0.0};
  Tensor b = from_vector(in, {8}, DType::f64).to(DType::bf16);
  CHECK(b.dtype() == DType::bf16);
  CHECK(b.nbytes() == 16);
  std::vector<double> got = b.to_vector();
  for (size_t i = 0; i < in.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == want[i]);
  }
  Tensor nan = from_vector({std::nan("")}, {1}).to(DType::bf16);
  CHECK(std::isnan(nan.item()));
  // Round trip through f32 of values that bf16 holds exactly is exact.
  CHECK(from_vector({0.5, -96.0}, {2}).to(DType::bf16).to(DType::f32).to_vector() == std::vector<double>{0.5, -96});
}

TEST_CASE("to(f16) rounds to nearest even, overflows to inf, handles subnormals") {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> in = {1.0 + std::ldexp(1, -11),      // halfway: ties to even -> 1
                            1.0 + 3 * std::ldexp(1, -12),  // above halfway -> 1 + 2^-10
                            0.1,                           // 1638/1024 * 2^-4
                            65504.0,                       // the largest finite half
                            65519.0,                       // rounds down to 65504
                            65520.0,                       // halfway to 65536: ties to even -> inf
                            std::ldexp(1, -24),            // the smallest subnormal
                            3 * std::ldexp(1, -25),        // halfway between 1 and 2 subnormal steps -> 2
                            std::ldexp(1, -25),            // halfway between 0 and 2^-24 -> 0
                            1e-9, -2.0};
  std::vector<double> want = {1.0, 1.0 + std::ldexp(1, -10), 1638.0 / 1024 / 16, 65504.0, 65504.0, inf,
                              std::ldexp(1, -24), std::ldexp(1, -23), 0.0, 0.0, -2.0};
  Tensor h = from_vector(in, {int64_t(in.size())}, DType::f64).to(DType::f16);
  CHECK(h.dtype() == DType::f16);
  std::vector<double> got = h.to_vector();
  for (size_t i = 0; i < in.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == want[i]);
  }
  CHECK(std::isnan(from_vector({std::nan("")}, {1}).to(DType::f16).item()));
}

TEST_CASE("to(bool) maps non-zero to true; bool converts back to 0/1") {
  Tensor b = from_vector({0, 0.5, -2, 0, 1e-30}, {5}).to(DType::boolean);
  CHECK(b.dtype() == DType::boolean);
  const bool* p = b.data<bool>();
  CHECK_FALSE(p[0]);
  CHECK(p[1]);
  CHECK(p[2]);
  CHECK_FALSE(p[3]);
  check_values(b.to(DType::f32), {0, 1, 1, 0, 1});
  check_values(b.to(DType::i64), {0, 1, 1, 0, 1});
  check_values(from_vector_i64({0, 7, -1}, {3}).to(DType::boolean), {0, 1, 1});
  check_values(from_vector({0, 3}, {2}).to(DType::u8), {0, 3});
}

TEST_CASE("printing shows dtype, shape, device and values") {
  Tensor x = from_vector({1, 2.5, -3, 4}, {2, 2});
  std::string s = x.str();
  CHECK(s.find("f32 (2, 2) on cpu") != std::string::npos);
  CHECK(s.find("[[1, 2.5],") != std::string::npos);
  CHECK(s.find("[-3, 4]]") != std::string::npos);
  std::ostringstream os;
  os << from_vector_i64({3, -4}, {2});
  CHECK(os.str() == "Tensor(i64 (2,) on cpu)\n[3, -4]");
  CHECK(arange(0, 20).str(3) == "Tensor(f32 (20,) on cpu)\n[0, 1, 2, ..., 17, 18, 19]");
  CHECK(ones({1}).requires_grad_().str().find("requires_grad") != std::string::npos);
  CHECK(Tensor().str() == "Tensor(undefined)");
  CHECK(scalar_tensor(2).str() == "Tensor(f32 () on cpu)\n2");
}

TEST_CASE("item, item_int and to_vector") {
  CHECK(scalar_tensor(-1.5).item() == -1.5);
  CHECK(from_vector({7}, {1, 1}).item() == 7);
  CHECK(from_vector_i64({int64_t(1) << 60}, {1}).item_int() == int64_t(1) << 60);
  CHECK(scalar_tensor(3.9).item_int() == 3);
  check_error([] { zeros({2}).item(); }, {"item", "(2,)"});
  // to_vector walks a view in logical row-major order.
  CHECK(iota({2, 3}).t().to_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(iota({2, 3}, DType::bf16).to_vector() == std::vector<double>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("view ops, contiguous and to_dtype keep values (forward)") {
  Tensor x = arange(0, 6).reshape({2, 3});
  check_values(x.permute({1, 0}).contiguous(), {0, 3, 1, 4, 2, 5});
  check_values(x.narrow(1, 2, 1).squeeze(1).unsqueeze(0), {2, 5});
  check_values(x.unsqueeze(1).expand({2, 2, 3}), {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5});
  Tensor d = x.to(DType::f64);
  CHECK(d.dtype() == DType::f64);
  check_values(d, {0, 1, 2, 3, 4, 5});
}

TEST_CASE("views: wrong numel, out-of-range narrow, bad dims") {
  Tensor x = zeros({2, 3});
  check_error([&] { x.reshape({4, 2}); }, {"reshape", "(2, 3)", "(4, 2)"});
  check_error([&] { x.reshape({-1, 4}); }, {"reshape", "(2, 3)"});
  check_error([&] { x.reshape({-1, -1}); }, {"reshape", "-1"});
  check_error([&] { x.view_as_shape({7}); }, {"view", "(2, 3)"});
  CHECK_THROWS_WITH_AS(x.narrow(1, 2, 2), doctest::Contains("narrow"), minivl::Error);
  check_error([&] { x.narrow(1, 2, 2); }, {"narrow", "[2, 4)", "size 3", "(2, 3)"});
  check_error([&] { x.narrow(0, -1, 1); }, {"narrow"});
  check_error([&] { x.narrow(2, 0, 1); }, {"narrow", "dim 2"});
  check_error([&] { x.slice(0, 0, 2, 0); }, {"slice", "step"});
  check_error([&] { x.transpose(0, 5); }, {"transpose"});
  check_error([&] { x.unsqueeze(4); }, {"unsqueeze"});
  check_error([&] { x.flatten(1, 0); }, {"flatten"});
  check_error([&] { x.copy_(zeros({3, 2})); }, {"copy_", "(3, 2)", "(2, 3)"});
  check_error([&] { cat({x, zeros({2, 2})}, 0); }, {"cat", "(2, 2)", "(2, 3)"});
  check_error([&] { cat({x, zeros({2, 3}, DType::f64)}, 0); }, {"cat", "f64"});
  check_error([&] { stack({x, zeros({3, 2})}, 0); }, {"stack", "(3, 2)", "(2, 3)"});
  check_error([&] { make_tensor({2, -1}, DType::f32, Device::cpu()); }, {"negative", "(2, -1)"});
}

TEST_CASE("dim-indexed ops on a 0-d tensor fail cleanly") {
  Tensor s = scalar_tensor(2);
  check_error([&] { s.size(0); }, {"size", "0-d"});
  check_error([&] { s.stride(-1); }, {"stride", "0-d"});
  check_error([&] { s.narrow(0, 0, 1); }, {"narrow", "0-d"});
  check_error([&] { s.select(0, 0); }, {"select", "0-d"});
  check_error([&] { s.slice(0, 0, 1); }, {"slice", "0-d"});
  check_error([&] { split(s, 1, 0); }, {"split"});
  check_error([&] { cat({s, s}, 0); }, {"cat"});
  // The dims that 0-d tensors do accept.
  CHECK(s.unsqueeze(0).shape() == Shape{1});
  CHECK(stack({s, s}, 0).shape() == Shape{2});
  CHECK(sum(s, {0}).item() == 2);
}

TEST_CASE("dtype names round-trip and unknown names are rejected") {
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::boolean})
    CHECK(dtype_from_name(dtype_name(d)) == d);
  CHECK(dtype_from_name("bfloat16") == DType::bf16);
  check_error([] { dtype_from_name("f8"); }, {"f8"});
}

TEST_CASE("empty: out of host memory names the bytes asked for, the allocator's stats and the knobs") {
  const std::string e = error_of([] { (void)empty({int64_t(1) << 48}, DType::f32); });
  CHECK(e.find("out of host memory: asked for 1125899906842624 bytes") != std::string::npos);
  CHECK(e.find("minivl holds") != std::string::npos);
  CHECK(e.find("peak") != std::string::npos);
  CHECK(e.find("data.batch_size") != std::string::npos);
  CHECK(e.find("bf16") != std::string::npos);
}

}  // TEST_SUITE
