// loom serve's KV plan (issue 13): an 8B-shaped model on a 24 GB machine gets its whole
// 131,072-token context by default; an explicit --ctx beyond the budget is a start-up error;
// the pool is capped at what `parallel` sequences can use.
#include "app/kv_plan.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace loom::app {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

KvPlanInput llama8b_on_24gb() {
  KvPlanInput in;
  in.bytes_per_token = 2 * 32 * 8 * 128 * 2;  // K and V, 32 layers, 8 KV heads x 128, f16
  in.kv_type = DType::kF16;
  in.model_context = 131072;
  in.memory_total = 24 * kGiB;
  in.memory_available = 19 * kGiB;  // after loading 3.8 GiB of Q4_0 weights
  in.weight_bytes = 3800ull << 20;
  in.reserve_bytes = 700ull << 20;
  in.parallel = 16;
  return in;
}

TEST(KvPlan, EightBillionOnTwentyFourGigabytesByDefault) {
  const KvPlan p = plan_kv_cache(llama8b_on_24gb());
  EXPECT_EQ(p.context, 131072);
  EXPECT_FALSE(p.context_lowered);
  EXPECT_GE(p.pool_tokens, 131072);
  EXPECT_LE(p.kv_bytes, static_cast<uint64_t>(0.9 * 24 * kGiB) - (3800ull << 20));
  EXPECT_NE(p.summary.find("KV cache f16"), std::string::npos) << p.summary;
  EXPECT_NE(p.summary.find("a request may use up to 131072 tokens"), std::string::npos);
}

TEST(KvPlan, SmallerMachineLowersTheDefaultContextAndSaysSo) {
  KvPlanInput in = llama8b_on_24gb();
  in.memory_total = 12 * kGiB;
  in.memory_available = 8 * kGiB;
  const KvPlan p = plan_kv_cache(in);
  EXPECT_TRUE(p.context_lowered);
  EXPECT_EQ(p.context, p.pool_tokens);
  EXPECT_LT(p.context, 131072);
  EXPECT_NE(p.summary.find("do not fit"), std::string::npos) << p.summary;
}

TEST(KvPlan, ExplicitContextBeyondTheBudgetIsAnError) {
  KvPlanInput in = llama8b_on_24gb();
  in.explicit_kv_bytes = 2 * kGiB;
  in.requested_context = 32768;  // 4 GiB of f16 KV
  try {
    plan_kv_cache(in);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("--ctx 32768 needs 4.00 GiB"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("holds 16384 tokens"), std::string::npos) << e.what();
  }
  in.requested_context = 200000;
  EXPECT_THROW(plan_kv_cache(in), Error);  // beyond the model's context
  in.requested_context = 0;
  in.explicit_kv_bytes = 1024;  // less than a block
  EXPECT_THROW(plan_kv_cache(in), Error);
  in.explicit_kv_bytes = 0;
  in.memory_utilization = 1.5;
  EXPECT_THROW(plan_kv_cache(in), Error);
}

TEST(KvPlan, PoolIsCappedAtParallelFullContexts) {
  KvPlanInput in = llama8b_on_24gb();
  in.model_context = 256;
  in.parallel = 4;
  const KvPlan p = plan_kv_cache(in);
  EXPECT_EQ(p.context, 256);
  EXPECT_EQ(p.n_blocks, 4 * 256 / 16 + 4);
  EXPECT_NE(p.summary.find("capped at 4 full contexts"), std::string::npos) << p.summary;
}

}  // namespace
}  // namespace loom::app
