// ParamStore: one contiguous buffer per layout group, replicated params in reverse layer order
// (so backward fills the replicated gradient buffer front to back), grads zeroed per group.
#include <gtest/gtest.h>

#include "gradient_check.h"

namespace owt::test {
namespace {

TEST(ParamStore, ContiguousGroupsInReverseOrder) {
  auto be = make_cpu_backend();
  Param a = make_replicated_param("a.weight", Shape{2, 3}, InitSpec{});
  Param b = make_replicated_param("b.bias", Shape{4}, InitSpec{});
  Param s = make_sharded_param("s.weight", Shape{5, 2}, 0, 1, 2, InitSpec{});  // rows [2, 5)
  Param c = make_replicated_param("c.weight", Shape{1, 5}, InitSpec{});
  ParamStore store({&a, &b, &s, &c}, *be);
  ASSERT_EQ(store.summed().size(), 3u);
  EXPECT_EQ(store.summed()[0], &c);
  EXPECT_EQ(store.summed()[1], &b);
  EXPECT_EQ(store.summed()[2], &a);
  EXPECT_EQ(store.summed_size(), 5u + 4u + 6u);
  EXPECT_EQ(store.offset_of(&c), 0u);
  EXPECT_EQ(store.offset_of(&b), 5u);
  EXPECT_EQ(store.offset_of(&a), 9u);
  EXPECT_EQ(store.offset_of(&s), 0u);
  EXPECT_EQ(c.grad.f32(), store.summed_grads());
  EXPECT_EQ(b.grad.f32(), store.summed_grads() + 5);
  EXPECT_EQ(a.grad.f32(), store.summed_grads() + 9);
  EXPECT_EQ(s.value.shape(), (Shape{3, 2}));
  // Fresh grads and state are zero; zero_grads clears both groups, zero_model_stage_grads one.
  for (Param* p : {&a, &b, &s, &c})
    for (int64_t i = 0; i < p->grad.numel(); ++i) {
      ASSERT_EQ(p->grad.f32()[i], 0.f);
      ASSERT_EQ(p->state.f32()[i], 0.f);
    }
  for (Param* p : {&a, &b, &s, &c}) std::fill(p->grad.f32(), p->grad.f32() + p->grad.numel(), 3.f);
  store.zero_model_stage_grads(*be);
  EXPECT_EQ(s.grad.f32()[5], 0.f);
  EXPECT_EQ(a.grad.f32()[5], 3.f);
  store.zero_grads(*be);
  for (Param* p : {&a, &b, &s, &c})
    for (int64_t i = 0; i < p->grad.numel(); ++i) ASSERT_EQ(p->grad.f32()[i], 0.f) << p->name;
}

}  // namespace
}  // namespace owt::test
