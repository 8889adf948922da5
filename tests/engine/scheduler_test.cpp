// The continuous-batching scheduler: results independent of the batch, prefix reuse, cancel
// freeing KV blocks, queue limits and request validation.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "convert/convert.h"
#include "engine/generator.h"
#include "io/model_spec.h"
#include "io/test_util.h"
#include "tokenizer/tokenizer.h"

namespace loom {
namespace {

struct Collect : RequestSink {
  std::vector<int32_t> ids;
  std::string text;
  FinishEvent finish;
  std::promise<void> done;
  void on_token(const TokenEvent& e) override {
    if (e.token >= 0) ids.push_back(e.token);
    text += e.text;
  }
  void on_finish(const FinishEvent& e) override {
    finish = e;
    done.set_value();
  }
  void wait() {
    ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  }
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = load_model_spec(test::data_dir() + "/ref/models/llama-tiny-llama2vocab");
    backend_ = make_cpu_backend(2, /*batch_invariant=*/true);  // as loom serve runs it
    model_ = load_causal_lm(spec_, *backend_);
    tok_.emplace(tokenizer::Tokenizer::from_hf_json(spec_.tokenizer.file));
  }
  SchedulerOptions options(int64_t parallel, int64_t blocks) {
    SchedulerOptions o;
    o.max_running = parallel;
    o.kv_blocks = blocks;
    o.block_size = 16;
    o.context = 256;
    o.step_tokens = 64;
    return o;
  }
  RequestParams greedy(std::vector<int32_t> prompt, int64_t n) {
    RequestParams p;
    p.prompt = std::move(prompt);
    p.max_tokens = n;
    p.sampling.temperature = 0.0f;
    p.ignore_eos = true;
    return p;
  }
  std::vector<int32_t> prompt_of(int i, int len) {
    std::vector<int32_t> p = {1};
    for (int j = 1; j < len; ++j) p.push_back(100 + (i * 131 + j * 17) % 20000);
    return p;
  }
  ModelSpec spec_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<CausalLM> model_;
  std::optional<tokenizer::Tokenizer> tok_;
};

TEST_F(SchedulerTest, BatchingDoesNotChangeResults) {
  // Alone, through the single-sequence generator.
  const int kRequests = 32;
  std::vector<std::vector<int32_t>> alone;
  Generator gen(*model_, &*tok_, 256);
  for (int i = 0; i < kRequests; ++i) {
    GenerationOptions o;
    o.max_tokens = 12;
    o.sampling.temperature = 0.0f;
    o.ignore_eos = true;
    alone.push_back(gen.generate(prompt_of(i, 5 + i % 23), o, nullptr).ids);
  }
  // Together: 32 at once, prompts of different lengths prefilling while others decode.
  Scheduler sched(*model_, &*tok_, options(32, 512));
  std::vector<std::shared_ptr<Collect>> sinks;
  for (int i = 0; i < kRequests; ++i) {
    sinks.push_back(std::make_shared<Collect>());
    ASSERT_EQ(sched.submit(greedy(prompt_of(i, 5 + i % 23), 12), sinks.back(),
                           std::make_shared<RequestHandle>()),
              Scheduler::SubmitStatus::kAccepted);
  }
  for (int i = 0; i < kRequests; ++i) {
    sinks[i]->wait();
    EXPECT_EQ(sinks[i]->ids, alone[i]) << "request " << i;
    EXPECT_EQ(sinks[i]->finish.finish_reason, "length");
    EXPECT_EQ(sinks[i]->finish.completion_tokens, 12);
  }
  EXPECT_EQ(sched.stats().kv_blocks_used, 0);
}

// The same with quantized weights, where fast kernels differ most between one row (decode) and
// many (prefill): a row's result must not depend on what else is in its batch.
TEST_F(SchedulerTest, BatchingDoesNotChangeResultsQuantized) {
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kF16}) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const std::string path =
        test::temp_path(std::string("sched-") + std::string(dtype_name(type)) + ".gguf").string();
    ConvertOptions co;
    co.type = type;
    convert_to_gguf(spec_, path, co);
    ModelSpec qspec = load_model_spec(path);
    auto qmodel = load_causal_lm(qspec, *backend_);
    Generator gen(*qmodel, nullptr, 256);
    std::vector<std::vector<int32_t>> alone;
    for (int i = 0; i < 12; ++i) {
      GenerationOptions o;
      o.max_tokens = 10;
      o.sampling.temperature = 0.0f;
      o.ignore_eos = true;
      alone.push_back(gen.generate(prompt_of(i, 4 + i * 3), o, nullptr).ids);
    }
    Scheduler sched(*qmodel, nullptr, options(12, 256));
    std::vector<std::shared_ptr<Collect>> sinks;
    for (int i = 0; i < 12; ++i) {
      sinks.push_back(std::make_shared<Collect>());
      sched.submit(greedy(prompt_of(i, 4 + i * 3), 10), sinks.back(),
                   std::make_shared<RequestHandle>());
    }
    for (int i = 0; i < 12; ++i) {
      sinks[i]->wait();
      EXPECT_EQ(sinks[i]->ids, alone[i]) << "request " << i;
    }
  }
}

TEST_F(SchedulerTest, PrefixReuseSkipsComputedBlocksWithSameResult) {
  Scheduler sched(*model_, &*tok_, options(4, 64));
  std::vector<int32_t> system = prompt_of(7, 40);  // 2 full blocks of 16 + 8
  auto a = std::make_shared<Collect>();
  sched.submit(greedy(system, 8), a, std::make_shared<RequestHandle>());
  a->wait();
  EXPECT_EQ(a->finish.cached_prompt_tokens, 0);
  std::vector<int32_t> longer = system;
  longer.push_back(555);
  longer.push_back(777);
  auto b = std::make_shared<Collect>();
  sched.submit(greedy(longer, 8), b, std::make_shared<RequestHandle>());
  b->wait();
  EXPECT_EQ(b->finish.cached_prompt_tokens, 32);
  EXPECT_GE(sched.stats().prefix_hit_blocks, 2u);
  // Same ids as computing it from scratch.
  Generator gen(*model_, &*tok_, 256);
  GenerationOptions o;
  o.max_tokens = 8;
  o.sampling.temperature = 0.0f;
  o.ignore_eos = true;
  EXPECT_EQ(b->ids, gen.generate(longer, o, nullptr).ids);
}

// Cancels from inside the first token callback, so the cancel always lands mid-generation
// however fast the kernels are.
struct CancelOnFirstToken : Collect {
  std::shared_ptr<RequestHandle> handle;
  Scheduler* sched = nullptr;
  int64_t blocks_while_running = -1;
  void on_token(const TokenEvent& e) override {
    if (blocks_while_running < 0) {
      blocks_while_running = sched->stats().kv_blocks_used;
      handle->cancelled = true;
    }
    Collect::on_token(e);
  }
};

TEST_F(SchedulerTest, CancelFreesBlocks) {
  Scheduler sched(*model_, &*tok_, options(2, 64));
  auto sink = std::make_shared<CancelOnFirstToken>();
  sink->handle = std::make_shared<RequestHandle>();
  sink->sched = &sched;
  sched.submit(greedy(prompt_of(1, 30), 200), sink, sink->handle);
  sink->wait();
  EXPECT_GT(sink->blocks_while_running, 0);
  EXPECT_EQ(sink->finish.finish_reason, "cancelled");
  EXPECT_LT(sink->finish.completion_tokens, 200);
  EXPECT_EQ(sched.stats().kv_blocks_used, 0);
}

TEST_F(SchedulerTest, QueueFullAndValidation) {
  SchedulerOptions o = options(1, 64);
  o.max_queue = 2;
  Scheduler sched(*model_, &*tok_, o);
  std::vector<std::shared_ptr<Collect>> sinks;
  int accepted = 0, refused = 0;
  for (int i = 0; i < 8; ++i) {
    sinks.push_back(std::make_shared<Collect>());
    auto st = sched.submit(greedy(prompt_of(i, 10), 100), sinks.back(),
                           std::make_shared<RequestHandle>());
    (st == Scheduler::SubmitStatus::kAccepted ? accepted : refused)++;
  }
  EXPECT_GE(refused, 4);
  EXPECT_LE(accepted, 4);
  test::expect_error([&] { sched.submit(greedy(prompt_of(0, 250), 10), sinks[0], nullptr); },
                     ErrorCode::kOutOfRange, {"exceeds the context of 256 tokens"});
  test::expect_error(
      [&] {
        sched.submit(greedy({1, 99999}, 10), sinks[0], nullptr);
      },
      ErrorCode::kInvalidArgument, {"outside the vocabulary"});
  RequestParams bad = greedy({1, 2}, 4);
  bad.sampling.top_p = 3.0f;
  test::expect_error([&] { sched.submit(bad, sinks[0], nullptr); }, ErrorCode::kInvalidArgument,
                     {"top_p"});
  sched.shutdown(false);
  EXPECT_EQ(sched.stats().kv_blocks_used, 0);
}

TEST_F(SchedulerTest, StopStringsAndText) {
  Scheduler sched(*model_, &*tok_, options(2, 64));
  auto sink = std::make_shared<Collect>();
  RequestParams p = greedy(tok_->encode("Once upon a time, in a small village,", true), 16);
  sched.submit(p, sink, std::make_shared<RequestHandle>());
  sink->wait();
  EXPECT_EQ(sink->text, ")</)</)</)</)</)</)</)</)</)</)</)</)</centercentercenter");
  auto stopped = std::make_shared<Collect>();
  p.stop = {"</center"};
  sched.submit(p, stopped, std::make_shared<RequestHandle>());
  stopped->wait();
  EXPECT_EQ(stopped->text, ")</)</)</)</)</)</)</)</)</)</)</)</)");
  EXPECT_EQ(stopped->finish.finish_reason, "stop");
}

// Issue 13's KV policy: a pool far smaller than the demand (8 sequences growing to ~110 tokens
// need ~60 blocks at once; the pool has 20) preempts the youngest and recomputes it later.
// Every request completes, with the ids its solo run gives, and the pool ends empty.
TEST_F(SchedulerTest, PreemptionUnderAPoolTooSmallKeepsResults) {
  const int kRequests = 8;
  std::vector<std::vector<int32_t>> alone;
  Generator gen(*model_, &*tok_, 256);
  for (int i = 0; i < kRequests; ++i) {
    GenerationOptions o;
    o.max_tokens = 96;
    o.sampling.temperature = 0.0f;
    o.ignore_eos = true;
    alone.push_back(gen.generate(prompt_of(i, 9 + i), o, nullptr).ids);
  }
  Scheduler sched(*model_, &*tok_, options(8, 20));
  std::vector<std::shared_ptr<Collect>> sinks;
  for (int i = 0; i < kRequests; ++i) {
    sinks.push_back(std::make_shared<Collect>());
    ASSERT_EQ(sched.submit(greedy(prompt_of(i, 9 + i), 96), sinks.back(),
                           std::make_shared<RequestHandle>()),
              Scheduler::SubmitStatus::kAccepted);
  }
  for (int i = 0; i < kRequests; ++i) {
    sinks[i]->wait();
    EXPECT_EQ(sinks[i]->ids, alone[i]) << "request " << i;
    EXPECT_EQ(sinks[i]->finish.finish_reason, "length");
  }
  EXPECT_GT(sched.stats().preemptions, 0u);
  EXPECT_EQ(sched.stats().kv_blocks_used, 0);
}

// A group is queued whole or not at all (issue 13: half-admitted n > 1 requests).
TEST_F(SchedulerTest, GroupsAreAllOrNothing) {
  SchedulerOptions o = options(1, 64);
  o.max_queue = 2;
  Scheduler sched(*model_, &*tok_, o);
  auto group = [&](int n) {
    std::vector<Scheduler::SequenceRequest> g;
    for (int i = 0; i < n; ++i) {
      g.push_back({greedy(prompt_of(i, 6), 40), std::make_shared<Collect>(),
                   std::make_shared<RequestHandle>()});
    }
    return g;
  };
  auto first = group(4);  // n > max_queue still enters an empty queue
  std::vector<std::shared_ptr<RequestSink>> keep;
  for (auto& r : first) keep.push_back(r.sink);
  EXPECT_EQ(sched.submit_group(std::move(first)), Scheduler::SubmitStatus::kAccepted);
  const auto before = sched.stats().queued + sched.stats().running;
  EXPECT_EQ(sched.submit_group(group(4)), Scheduler::SubmitStatus::kQueueFull);
  EXPECT_LE(sched.stats().queued + sched.stats().running, before) << "nothing of the refused group";
  for (auto& k : keep) static_cast<Collect&>(*k).wait();
}

// F16 and BF16 caches serve, and their results do not depend on batching either (the typed
// attention is the float path over the stored rows; tests/backend checks it bit for bit).
TEST_F(SchedulerTest, TypedKvCachesServeAndStayBatchInvariant) {
  for (DType type : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    auto run = [&](int parallel) {
      SchedulerOptions o = options(parallel, 256);
      o.kv_type = type;
      Scheduler sched(*model_, &*tok_, o);
      std::vector<std::shared_ptr<Collect>> sinks;
      for (int i = 0; i < 6; ++i) {
        sinks.push_back(std::make_shared<Collect>());
        EXPECT_EQ(sched.submit(greedy(prompt_of(i, 7 + i), 10), sinks.back(),
                               std::make_shared<RequestHandle>()),
                  Scheduler::SubmitStatus::kAccepted);
      }
      std::vector<std::vector<int32_t>> out;
      for (auto& s : sinks) {
        s->wait();
        out.push_back(s->ids);
      }
      return out;
    };
    EXPECT_EQ(run(1), run(6));
  }
}

// A drafter whose every third proposal is off by one: rejections at known places.
class OftenWrong final : public Drafter {
 public:
  explicit OftenWrong(std::unique_ptr<Drafter> inner) : inner_(std::move(inner)) {}
  void propose(std::span<const int32_t> context, int32_t k, std::vector<int32_t>& out) override {
    const size_t first = out.size();
    inner_->propose(context, k, out);
    for (size_t i = first; i < out.size(); ++i) {
      if (++count_ % 3 == 0) out[i] = (out[i] + 1) % 32000;
    }
  }

 private:
  std::unique_ptr<Drafter> inner_;
  int count_ = 0;
};

// Issue 17: speculative decoding in the scheduler. Prompt lookup, a draft model that always
// agrees (the model itself), its Q4_0, one often wrong, a pool small enough to preempt; requests of
// different lengths, so the batch shrinks below spec_max_batch as they finish and drafting starts
// part way. Every request gets the ids of its plain solo run, and drafts were made and accepted.
TEST_F(SchedulerTest, SpeculativeDecodingGivesThePlainTokens) {
  const int kRequests = 6;
  auto max_tokens = [](int i) { return 16 + 12 * i; };
  std::vector<std::vector<int32_t>> alone;
  Generator gen(*model_, &*tok_, 256);
  for (int i = 0; i < kRequests; ++i) {
    GenerationOptions o;
    o.max_tokens = max_tokens(i);
    o.sampling.temperature = 0.0f;
    o.ignore_eos = true;
    alone.push_back(gen.generate(prompt_of(i, 6 + 3 * i), o, nullptr).ids);
  }
  const std::string q4_path = test::temp_path("sched-spec-draft-q4_0.gguf").string();
  ConvertOptions co;
  co.type = DType::kQ4_0;
  convert_to_gguf(spec_, q4_path, co);
  const ModelSpec q4_spec = load_model_spec(q4_path);
  auto draft_backend = make_cpu_backend(1, /*batch_invariant=*/false);
  auto q4 = load_causal_lm(q4_spec, *draft_backend);
  CausalLM* self = model_.get();
  CausalLM* q4_model = q4.get();
  struct Case {
    std::string name;
    DrafterFactory drafter;
    int64_t blocks;
  };
  const std::vector<Case> cases = {
      {"ngram", [](int64_t) { return std::make_unique<NgramDrafter>(); }, 256},
      {"self", [self](int64_t n) { return std::make_unique<ModelDrafter>(*self, n); }, 256},
      {"q4_0", [q4_model](int64_t n) { return std::make_unique<ModelDrafter>(*q4_model, n); }, 256},
      {"often wrong",
       [self](int64_t n) {
         return std::make_unique<OftenWrong>(std::make_unique<ModelDrafter>(*self, n));
       },
       256},
      {"ngram, small pool", [](int64_t) { return std::make_unique<NgramDrafter>(); }, 8},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SchedulerOptions o = options(kRequests, c.blocks);
    o.make_drafter = c.drafter;
    o.max_draft = 6;
    o.spec_max_batch = 3;
    Scheduler sched(*model_, &*tok_, o);
    std::vector<std::shared_ptr<Collect>> sinks;
    for (int i = 0; i < kRequests; ++i) {
      sinks.push_back(std::make_shared<Collect>());
      ASSERT_EQ(sched.submit(greedy(prompt_of(i, 6 + 3 * i), max_tokens(i)), sinks.back(),
                             std::make_shared<RequestHandle>()),
                Scheduler::SubmitStatus::kAccepted);
    }
    for (int i = 0; i < kRequests; ++i) {
      sinks[i]->wait();
      EXPECT_EQ(sinks[i]->ids, alone[i]) << "request " << i;
      EXPECT_EQ(sinks[i]->finish.finish_reason, "length");
      EXPECT_EQ(sinks[i]->finish.completion_tokens, max_tokens(i));
    }
    const SchedulerStats st = sched.stats();
    EXPECT_GT(st.drafted, 0u);
    EXPECT_GT(st.draft_accepted, 0u);
    EXPECT_LE(st.draft_accepted, st.drafted);
    if (c.name == "self") {
      EXPECT_EQ(st.draft_accepted, st.drafted);
    }
    if (c.name == "often wrong") {
      EXPECT_LT(st.draft_accepted, st.drafted);
    }
    if (c.name == "ngram, small pool") {
      EXPECT_GT(st.preemptions, 0u);
    }
    EXPECT_EQ(st.kv_blocks_used, 0);
  }
}

// Stop strings, EOS and logprobs under speculation: the same text, finish and per-token
// logprobs as without it (a stop string inside an accepted run of drafts ends it there).
TEST_F(SchedulerTest, SpeculativeDecodingStopsAndLogprobsAsPlain) {
  RequestParams p = greedy(tok_->encode("Once upon a time, in a small village,", true), 40);
  p.stop = {"</center"};
  p.top_logprobs = 2;
  struct Logged : Collect {
    std::vector<float> logprobs;
    void on_token(const TokenEvent& e) override {
      if (e.token >= 0) logprobs.push_back(e.logprob);
      Collect::on_token(e);
    }
  };
  auto run = [&](bool speculate) {
    SchedulerOptions o = options(2, 64);
    if (speculate) o.make_drafter = [](int64_t) { return std::make_unique<NgramDrafter>(); };
    Scheduler sched(*model_, &*tok_, o);
    auto sink = std::make_shared<Logged>();
    sched.submit(p, sink, std::make_shared<RequestHandle>());
    sink->wait();
    if (speculate) {
      EXPECT_GT(sched.stats().draft_accepted, 0u);
    }
    return sink;
  };
  auto plain = run(false);
  auto spec = run(true);
  EXPECT_EQ(spec->text, plain->text);
  EXPECT_EQ(spec->ids, plain->ids);
  EXPECT_EQ(spec->logprobs, plain->logprobs);
  EXPECT_EQ(spec->finish.finish_reason, "stop");
  EXPECT_EQ(spec->finish.completion_tokens, plain->finish.completion_tokens);
}

// loom chat's turns: a generation with reuse_cache computes only what its prompt does not
// share with the previous one's prompt and output, and (on this batch-invariant backend) gives
// exactly the tokens of a fresh generation.
TEST_F(SchedulerTest, GeneratorReusesTheCacheOfThePreviousTurn) {
  Generator chat(*model_, &*tok_, 256);
  Generator fresh(*model_, &*tok_, 256);
  GenerationOptions o;
  o.max_tokens = 12;
  o.sampling.temperature = 0.0f;
  o.ignore_eos = true;
  GenerationOptions reuse = o;
  reuse.reuse_cache = true;
  const std::vector<int32_t> p1 = prompt_of(3, 20);
  const GenerationResult r1 = chat.generate(p1, reuse, nullptr);
  EXPECT_EQ(r1.cached_prompt_tokens, 0);
  EXPECT_EQ(r1.ids, fresh.generate(p1, o, nullptr).ids);
  std::vector<int32_t> p2 = p1;
  p2.insert(p2.end(), r1.ids.begin(), r1.ids.end());
  for (int32_t t : {555, 777, 999}) p2.push_back(t);
  const GenerationResult r2 = chat.generate(p2, reuse, nullptr);
  // Everything run last turn: the prompt and every generated token but the last chosen one.
  EXPECT_EQ(r2.cached_prompt_tokens, static_cast<int64_t>(p1.size() + r1.ids.size()) - 1);
  EXPECT_EQ(r2.ids, fresh.generate(p2, o, nullptr).ids);
  // A prompt that parts from the cached text early reuses only the shared start.
  std::vector<int32_t> p3(p2.begin(), p2.begin() + 10);
  p3.push_back(4242);
  const GenerationResult r3 = chat.generate(p3, reuse, nullptr);
  EXPECT_EQ(r3.cached_prompt_tokens, 10);
  EXPECT_EQ(r3.ids, fresh.generate(p3, o, nullptr).ids);
  // Without reuse_cache nothing is kept or reused.
  EXPECT_EQ(chat.generate(p3, o, nullptr).cached_prompt_tokens, 0);
  EXPECT_EQ(chat.generate(p3, reuse, nullptr).cached_prompt_tokens, 0);
}

}  // namespace
}  // namespace loom
