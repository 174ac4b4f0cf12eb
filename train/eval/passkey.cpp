// Passkey evaluation: streaming prompt feed (whole segments, head at the last position only),
// greedy answer, per-case timing and peak RSS, the console table and the JSON report.
#include "train/eval/passkey.h"

#include <sys/resource.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/compat.h"
#include "core/decode.h"
#include "core/error.h"
#include "data/synth.h"
#include "data/seed_mix.h"
#include "train/run/device.h"
#include "train/run/stopwatch.h"

namespace infini {
namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::string length_label(int64_t n) {
  if (n % 1048576 == 0) return std::to_string(n / 1048576) + "M";
  if (n % 1024 == 0) return std::to_string(n / 1024) + "K";
  return std::to_string(n);
}

}  // namespace

int64_t peak_rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));  // "VmHWM:   123456 kB"
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss);  // KiB on Linux
}

torch::Tensor stream_prompt(Decoder& model, StreamState& state, const std::vector<int64_t>& ids, bool bf16,
                            const std::function<void(int64_t)>& on_tokens) {
  TORCH_CHECK(!ids.empty(), "stream_prompt: empty prompt");
  const torch::Device dev = model->tok_embeddings->weight.device();
  const int64_t T = static_cast<int64_t>(ids.size());
  compat::AutocastGuard ac(bf16, dev.type());
  torch::Tensor x = torch::from_blob(const_cast<int64_t*>(ids.data()), {1, T}, torch::kLong).to(dev);
  int64_t left = T;
  if (on_tokens && state.position() == 0 && !state.no_memory) {
    // The whole segments read_prompt would advance over, in pieces of 256 segments: a multiple of
    // its chunk of 4, so the same chunks are computed, and the callback sees each piece.
    const int64_t N = model->config().segment_len, piece = 256 * N, whole = (T - 1) / N * N;
    int64_t at = 0;
    for (; at + piece <= whole; at += piece) {
      model->advance(state, x.narrow(1, at, piece), 4);
      on_tokens(piece);
    }
    x = x.narrow(1, at, T - at);
    left = T - at;
  }
  torch::Tensor logits = model->head(model->read_prompt(state, x, 4)).squeeze(1);  // (1, V)
  if (on_tokens) on_tokens(left);
  return logits;
}

std::vector<int64_t> greedy_tokens(Decoder& model, StreamState& state, torch::Tensor logits, int64_t n, bool bf16) {
  std::vector<int64_t> out;
  decode_loop(
      model, state, logits, n,
      [](const torch::Tensor& l) { return l.argmax(-1); },  // first maximum: ties go to the lowest id
      [&](const torch::Tensor& next) {
        out.push_back(next.item<int64_t>());
        return true;
      },
      bf16);
  return out;
}

double continuation_logprob(Decoder& model, StreamState& state, torch::Tensor logits, const std::vector<int64_t>& ids,
                            bool bf16) {
  double sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    sum += logits.to(torch::kDouble).log_softmax(-1)[0][ids[i]].item<double>();
    if (i + 1 < ids.size()) logits = feed_step(model, state, torch::tensor({ids[i]}, torch::kLong), bf16);
  }
  return sum;
}

bool passkey_correct(const std::string& answer, const std::string& key) {
  const std::string a = trim(answer);
  if (key.empty() || a.compare(0, key.size(), key) != 0) return false;
  return a.size() == key.size() || !std::isdigit(static_cast<unsigned char>(a[key.size()]));
}

std::vector<PasskeyCaseResult> run_passkey_eval(Decoder& model, const Tokenizer& tok, const PasskeyBuilder& build,
                                                const PasskeyOptions& opt,
                                                const std::function<void(const PasskeyCaseResult&)>& on_case) {
  TORCH_CHECK(opt.workers >= 1, "run_passkey_eval: workers must be >= 1");
  model->eval();
  struct Case {
    size_t li, di;
    int64_t trial;
  };
  std::vector<Case> cases;
  for (size_t li = 0; li < opt.lengths.size(); ++li)
    for (size_t di = 0; di < opt.depths.size(); ++di)
      for (int64_t trial = 0; trial < opt.trials; ++trial) cases.push_back({li, di, trial});
  TORCH_CHECK(opt.shards >= 1 && opt.shard >= 0 && opt.shard < opt.shards, "run_passkey_eval: bad shard");
  if (opt.shards > 1) {
    std::vector<Case> mine;
    for (size_t i = static_cast<size_t>(opt.shard); i < cases.size(); i += static_cast<size_t>(opt.shards))
      mine.push_back(cases[i]);
    cases = std::move(mine);
  }

  auto run_case = [&](const Case& c) {
    const uint64_t case_seed = splitmix64(opt.seed ^ splitmix64((static_cast<uint64_t>(c.li) << 40) ^
                                                                (static_cast<uint64_t>(c.di) << 20) ^
                                                                static_cast<uint64_t>(c.trial)));
    PasskeyCaseResult r;
    r.length = opt.lengths[c.li];
    r.depth = opt.depths[c.di];
    r.trial = c.trial;
    PasskeyPrompt p = build(r.length, r.depth, opt.digits, case_seed);
    TORCH_CHECK(static_cast<int64_t>(p.ids.size()) == r.length, "passkey builder returned ", p.ids.size(),
                " tokens for a requested length of ", r.length);
    for (int64_t id : p.ids) {
      if (id < 0 || id >= model->config().vocab_size)
        throw Error("passkey prompt holds token id " + std::to_string(id) + " but the model's vocab_size is " +
                    std::to_string(model->config().vocab_size) + " (tokenizer and checkpoint do not match)");
    }
    r.key = p.key;
    r.key_position = p.key_position;

    // On a GPU the kernels run behind the host: synchronize so that prompt_s is the prompt's time.
    const torch::Device dev = model->tok_embeddings->weight.device();
    synchronize(dev);
    const auto t0 = std::chrono::steady_clock::now();
    StreamState state = model->new_state(1);
    state.no_memory = opt.no_memory;
    torch::Tensor logits = stream_prompt(model, state, p.ids, opt.bf16, opt.on_tokens);
    synchronize(dev);
    const double prompt_s = seconds_since(t0);
    const std::vector<int> key_ids = tok.encode(" " + r.key);  // as SFT records' responses are encoded
    StreamState scored = state.clone();
    r.key_logprob = continuation_logprob(model, scored, logits, std::vector<int64_t>(key_ids.begin(), key_ids.end()),
                                         opt.bf16);
    std::vector<int64_t> ans = greedy_tokens(model, state, logits, opt.digits + opt.extra_tokens, opt.bf16);
    r.seconds = seconds_since(t0);
    r.tokens_per_s = prompt_s > 0 ? static_cast<double>(r.length) / prompt_s : 0.0;
    r.answer = tok.decode(std::vector<int>(ans.begin(), ans.end()));
    r.correct = passkey_correct(r.answer, r.key);
    p = PasskeyPrompt{};  // free the prompt before the next case is built
    r.peak_rss_kb = peak_rss_kb();
    return r;
  };

  std::vector<PasskeyCaseResult> results(cases.size());
  std::mutex mu;                // guards next, failure and on_case
  size_t next = 0;
  std::exception_ptr failure;
  const int intra_threads = torch::get_num_threads();
  auto worker = [&] {
    torch::InferenceMode guard;  // per thread, like autocast
    // OpenMP's thread count is per thread too (a new thread starts at all cores): take the caller's.
    compat::set_threads(intra_threads);
    for (;;) {
      size_t i;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (failure || next == cases.size()) return;
        i = next++;
      }
      try {
        PasskeyCaseResult r = run_case(cases[i]);
        std::lock_guard<std::mutex> lock(mu);
        results[i] = r;
        if (on_case) on_case(r);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failure) failure = std::current_exception();
        return;
      }
    }
  };
  const size_t n_threads = std::min(static_cast<size_t>(opt.workers), cases.size());
  if (n_threads <= 1) {
    worker();
  } else {
    // Libraries below (BLAS, kernel dispatch) set themselves up on first use; let that happen once
    // here, on one thread and outside any case's timing, rather than in several workers at once.
    {
      torch::InferenceMode guard;
      StreamState warm = model->new_state(1);
      stream_prompt(model, warm, std::vector<int64_t>(static_cast<size_t>(model->config().segment_len) + 1, 0),
                    opt.bf16);
    }
    std::vector<std::thread> threads;
    for (size_t t = 0; t < n_threads; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  if (failure) std::rethrow_exception(failure);
  return results;
}

std::string passkey_table(const std::vector<PasskeyCaseResult>& results, const PasskeyOptions& opt) {
  std::ostringstream os;
  char buf[64];
  os << "passkey accuracy (rows: length in tokens, columns: key depth)\n";
  std::snprintf(buf, sizeof buf, "%-8s", "length");
  os << buf;
  for (double d : opt.depths) {
    std::snprintf(buf, sizeof buf, " %8s", ("d=" + std::to_string(d).substr(0, 4)).c_str());
    os << buf;
  }
  os << "  log p(key)    tokens/s  peak RSS MiB\n";
  for (int64_t len : opt.lengths) {
    std::snprintf(buf, sizeof buf, "%-8s", length_label(len).c_str());
    os << buf;
    double tps = 0, logp = 0;
    int64_t n_all = 0, rss = 0;
    for (double d : opt.depths) {
      int64_t n = 0, ok = 0;
      for (const auto& r : results) {
        if (r.length != len || r.depth != d) continue;
        ++n;
        ok += r.correct ? 1 : 0;
        tps += r.tokens_per_s;
        logp += r.key_logprob;
        ++n_all;
        rss = std::max(rss, r.peak_rss_kb);
      }
      std::snprintf(buf, sizeof buf, " %8s", n ? (std::to_string(ok) + "/" + std::to_string(n)).c_str() : "-");
      os << buf;
    }
    const double n = n_all ? static_cast<double>(n_all) : 1.0;
    std::snprintf(buf, sizeof buf, "  %10.3f  %10.0f  %12.1f\n", logp / n, tps / n, static_cast<double>(rss) / 1024.0);
    os << buf;
  }
  int64_t ok = 0;
  for (const auto& r : results) ok += r.correct ? 1 : 0;
  os << "overall: " << ok << "/" << results.size() << " correct\n";
  return os.str();
}

nlohmann::json passkey_case_json(const PasskeyCaseResult& r) {
  return {{"length", r.length},         {"depth", r.depth},
          {"trial", r.trial},           {"key", r.key},
          {"answer", r.answer},         {"correct", r.correct},
          {"key_logprob", r.key_logprob}, {"key_position", r.key_position},
          {"seconds", r.seconds},       {"tokens_per_s", r.tokens_per_s},
          {"peak_rss_kb", r.peak_rss_kb}};
}

PasskeyCaseResult passkey_case_from_json(const nlohmann::json& j) {
  PasskeyCaseResult r;
  r.length = j.at("length").get<int64_t>();
  r.depth = j.at("depth").get<double>();
  r.trial = j.at("trial").get<int64_t>();
  r.key = j.at("key").get<std::string>();
  r.answer = j.at("answer").get<std::string>();
  r.correct = j.at("correct").get<bool>();
  r.key_logprob = j.at("key_logprob").get<double>();
  r.key_position = j.at("key_position").get<int64_t>();
  r.seconds = j.at("seconds").get<double>();
  r.tokens_per_s = j.at("tokens_per_s").get<double>();
  r.peak_rss_kb = j.at("peak_rss_kb").get<int64_t>();
  return r;
}

nlohmann::json passkey_results_json(const std::vector<PasskeyCaseResult>& results, const PasskeyOptions& opt) {
  nlohmann::json j;
  j["lengths"] = opt.lengths;
  j["depths"] = opt.depths;
  j["trials"] = opt.trials;
  j["digits"] = opt.digits;
  j["seed"] = opt.seed;
  j["precision"] = opt.bf16 ? "bf16" : "fp32";
  j["no_memory"] = opt.no_memory;
  j["workers"] = opt.workers;
  j["cases"] = nlohmann::json::array();
  int64_t ok = 0, rss = 0;
  for (const auto& r : results) {
    ok += r.correct ? 1 : 0;
    rss = std::max(rss, r.peak_rss_kb);
    j["cases"].push_back(passkey_case_json(r));
  }
  j["accuracy"] = results.empty() ? 0.0 : static_cast<double>(ok) / static_cast<double>(results.size());
  j["peak_rss_kb"] = rss;
  return j;
}

}  // namespace infini
