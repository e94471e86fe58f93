#pragma once
// Embedding-like test inputs for the contrastive kernels: rows of random direction and random norm,
// so that a kernel assuming unit rows fails.
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <vector>

namespace minivl::testing {

// Fills each (n, d) row-major matrix of `matrices`, in turn, with rows of normal draws scaled to a
// norm drawn uniformly from [lo, hi]; T (float or double) is the type of the draws and the scale.
template <typename T>
void fill_random_norm_rows(std::initializer_list<std::vector<T>*> matrices, int64_t n, int64_t d, T lo, T hi,
                           uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<T> nd;
  std::uniform_real_distribution<T> norm(lo, hi);
  for (std::vector<T>* m : matrices)
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t k = 0; k < d; ++k) s += std::pow((*m)[size_t(i * d + k)] = nd(gen), 2);
      const T f = norm(gen) / T(std::sqrt(s));
      for (int64_t k = 0; k < d; ++k) (*m)[size_t(i * d + k)] *= f;
    }
}

}  // namespace minivl::testing
