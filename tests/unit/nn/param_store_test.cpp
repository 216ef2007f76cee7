// ParamStore: one contiguous buffer per layout group, replicated params in reverse layer order
// (so backward fills the replicated gradient buffer front to back), grads zeroed per group.
#include <gtest/gtest.h>

#include <cstdint>

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
  // Each param starts 64 floats (256 bytes) after the previous one's start or further.
  EXPECT_EQ(store.summed_size(), 3u * 64u);
  EXPECT_EQ(store.offset_of(&c), 0u);
  EXPECT_EQ(store.offset_of(&b), 64u);
  EXPECT_EQ(store.offset_of(&a), 128u);
  EXPECT_EQ(store.offset_of(&s), 0u);
  EXPECT_EQ(c.grad.f32(), store.summed_grads());
  EXPECT_EQ(b.grad.f32(), store.summed_grads() + 64);
  EXPECT_EQ(a.grad.f32(), store.summed_grads() + 128);
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

// Every param's value, gradient and state start on a 256-byte boundary of their group's buffer
// (64-byte aligned addresses on the CPU, whose allocator aligns buffers to 64), and the gaps
// between params are zero in the value and gradient buffers, so all-reducing them is harmless.
TEST(ParamStore, ParamsStart256BytesApartWithZeroGaps) {
  auto be = make_cpu_backend();
  Param a = make_replicated_param("a.weight", Shape{65}, InitSpec{});  // two slots: 128 floats
  Param b = make_replicated_param("b.weight", Shape{3, 5}, InitSpec{});
  Param c = make_replicated_param("c.bias", Shape{64}, InitSpec{});      // exactly one slot
  ParamStore store({&a, &b, &c}, *be);
  EXPECT_EQ(store.summed_size(), 64u + 64u + 128u);
  EXPECT_EQ(store.offset_of(&c), 0u);
  EXPECT_EQ(store.offset_of(&b), 64u);
  EXPECT_EQ(store.offset_of(&a), 128u);
  EXPECT_EQ(a.stored_numel(), 128);
  EXPECT_EQ(c.stored_numel(), 64);
  for (Param* p : {&a, &b, &c}) {
    EXPECT_EQ(store.offset_of(p) % kParamAlignElements, 0u) << p->name;
    for (const Tensor* t : {&p->value, &p->grad, &p->state})
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t->f32()) % 64, 0u) << p->name;
  }
  const float* g = store.summed_grads();
  const float* v = c.value.f32();  // the summed group's values start with c
  for (size_t i = 0; i < store.summed_size(); ++i) {
    ASSERT_EQ(g[i], 0.f) << "gradient element " << i;
    ASSERT_EQ(v[i], 0.f) << "value element " << i;  // params are not initialised here
  }
}

TEST(ParamStore, PaddedNumelRoundsUpTo64Floats) {
  EXPECT_EQ(padded_numel(0), 0);
  EXPECT_EQ(padded_numel(1), 64);
  EXPECT_EQ(padded_numel(64), 64);
  EXPECT_EQ(padded_numel(65), 128);
  EXPECT_EQ(padded_numel(4096 * 9216), 4096 * 9216);
}

}  // namespace
}  // namespace owt::test
