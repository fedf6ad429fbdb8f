#include "sieve/tensor.hpp"

#include <gtest/gtest.h>

#include "sieve/error.hpp"

namespace sieve {
namespace {

TEST(Tensor, ZeroFilledAndShaped) {
  Tensor t({2, 3});
  EXPECT_EQ(t.size(), 6);
  EXPECT_EQ(t.rank(), 2);
  for (float v : t.values()) EXPECT_EQ(v, 0.0f);
}

TEST(Tensor, ReshapeSharesStorage) {
  Tensor t({2, 3}, 1.0f);
  Tensor r = t.reshaped({3, 2});
  r[0] = 5.0f;
  EXPECT_EQ(t[0], 5.0f);
  EXPECT_THROW(t.reshaped({4}), Error);
}

TEST(Tensor, CloneIsIndependent) {
  Tensor t({4}, 2.0f);
  Tensor c = t.clone();
  c[0] = 1.0f;
  EXPECT_EQ(t[0], 2.0f);
}

TEST(Tensor, AbsurdShapesAreRefusedBeforeAllocation) {
  EXPECT_THROW(Tensor::uninitialized({int64_t{1} << 20, int64_t{1} << 20}), Error);
  EXPECT_THROW(checked_element_count({-1, 3}), Error);
  EXPECT_THROW(checked_element_count({int64_t{1} << 62, int64_t{1} << 62}), Error);
  EXPECT_EQ(checked_element_count({0, int64_t{1} << 62}), 0);
}

}  // namespace
}  // namespace sieve
