// Long-document perplexity: chunks of whole segments through the parallel path (the memory carried
// from chunk to chunk), the ragged end streamed; per-target NLL binned by the target's position in
// the document. Tokenization of the input file in bounded blocks.
#include "train/eval/ppl.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>

#include "core/compat.h"
#include "core/error.h"

namespace infini {

double PplBucket::mean_nll() const {
  return count > 0 ? nll_sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
}

double PplBucket::ppl() const { return std::exp(mean_nll()); }

std::string PplBucket::label() const {
  auto k = [](int64_t n) { return std::to_string(n / 1024) + "K"; };
  if (end < 0) return k(begin) + "+";
  return (begin == 0 ? std::string("0") : k(begin)) + "-" + k(end);
}

std::vector<PplBucket> default_ppl_buckets() {
  const int64_t K = 1024;
  std::vector<PplBucket> b(5);
  const int64_t edges[] = {0, 2 * K, 8 * K, 32 * K, 128 * K, -1};
  for (int i = 0; i < 5; ++i) {
    b[i].begin = edges[i];
    b[i].end = edges[i + 1];
  }
  return b;
}

namespace {

// Adds per-target losses `nll` (L,) whose targets sit at document positions first_pos... .
void add_losses(PplResult& r, const torch::Tensor& nll, int64_t first_pos) {
  torch::Tensor host = nll.to(torch::kDouble).cpu().contiguous();
  const double* p = host.data_ptr<double>();
  const int64_t L = host.numel();
  size_t b = 0;
  for (int64_t i = 0; i < L; ++i) {
    const int64_t pos = first_pos + i;
    while (b + 1 < r.buckets.size() && r.buckets[b].end >= 0 && pos >= r.buckets[b].end) ++b;
    r.overall.nll_sum += p[i];
    r.overall.count += 1;
    if (pos >= r.buckets[b].begin) {
      r.buckets[b].nll_sum += p[i];
      r.buckets[b].count += 1;
    }
  }
}

// -log p(targets) per position: logits (1, L, V), targets (1, L) -> (L,).
torch::Tensor target_nll(const torch::Tensor& logits, const torch::Tensor& targets) {
  return -torch::log_softmax(logits.to(torch::kFloat), -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1).squeeze(0);
}

}  // namespace

PplResult stream_perplexity(Decoder& model, const std::vector<int64_t>& tokens, const PplOptions& opt) {
  TORCH_CHECK(tokens.size() >= 2, "stream_perplexity needs at least two tokens");
  TORCH_CHECK(opt.chunk_segments >= 1, "stream_perplexity: chunk_segments must be >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  torch::InferenceMode guard;
  model->eval();
  const torch::Device dev = model->tok_embeddings->weight.device();
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t N = model->config().segment_len;
  // Position p predicts token p + 1, so the last token is never fed: T - 1 inputs.
  const int64_t chunk = opt.chunk > 0 ? opt.chunk : opt.chunk_segments * N;

  PplResult r;
  r.buckets = default_ppl_buckets();
  r.no_memory = opt.no_memory;
  r.overall.begin = 0;
  StreamState state = model->new_state(1);
  state.no_memory = opt.no_memory;
  const torch::Tensor all = torch::from_blob(const_cast<int64_t*>(tokens.data()), {1, T}, torch::kLong);

  for (int64_t start = 0; start < T - 1; start += chunk) {
    const int64_t L = std::min(chunk, T - 1 - start);
    torch::Tensor x = all.narrow(1, start, L).to(dev);             // (1, L)
    torch::Tensor targets = all.narrow(1, start + 1, L).to(dev);   // (1, L)
    // The parallel path takes the chunk's whole segments (chunks start on a segment boundary when
    // opt.chunk is 0); the rest, and every chunk when opt.chunk is set, is streamed.
    const int64_t whole = opt.chunk > 0 ? 0 : L / N * N;
    if (whole > 0) {
      torch::Tensor xs = x.narrow(1, 0, whole), logits;
      {
        compat::AutocastGuard ac(opt.bf16, dev.type());
        if (opt.no_memory)  // every segment alone, as the first of a fresh document: a batch of segments
          logits = model->forward(xs.view({whole / N, N})).reshape({1, whole, -1});
        else
          logits = model->head(model->trunk_advance(state, xs));
      }
      add_losses(r, target_nll(logits, targets.narrow(1, 0, whole)), start + 1);
    }
    if (whole < L) {
      torch::Tensor logits;
      {
        compat::AutocastGuard ac(opt.bf16, dev.type());
        logits = model->forward_stream(state, x.narrow(1, whole, L - whole));
      }
      add_losses(r, target_nll(logits, targets.narrow(1, whole, L - whole)), start + whole + 1);
    }
    if (opt.on_tokens) opt.on_tokens(start + L + 1);
  }
  r.tokens = T;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::vector<int64_t> tokenize_text_file(const Tokenizer& tok, const std::string& path, int64_t max_tokens) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the text file");
  std::vector<int64_t> ids;
  if (tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  const size_t block = size_t{1} << 20;
  std::string carry, buf(block, '\0');
  auto full = [&] { return max_tokens > 0 && static_cast<int64_t>(ids.size()) >= max_tokens; };
  auto encode = [&](const std::string& text) {
    if (text.empty() || full()) return;
    for (int id : tok.encode(text)) {
      ids.push_back(id);
      if (full()) return;
    }
  };
  while (!full()) {
    in.read(buf.data(), static_cast<std::streamsize>(block));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    carry.append(buf.data(), static_cast<size_t>(n));
    // Cut after the last newline so words are never split between two encode calls.
    const size_t cut = carry.rfind('\n');
    if (cut == std::string::npos) {
      if (carry.size() < 16 * block) continue;  // one giant line: give up on finding a newline
      encode(carry);
      carry.clear();
      continue;
    }
    encode(carry.substr(0, cut + 1));
    carry.erase(0, cut + 1);
  }
  if (in.bad()) throw Error(path + ": read error");
  encode(carry);
  if (ids.size() < 2) throw Error(path + ": no text to evaluate (expected at least one token, found none)");
  return ids;
}

nlohmann::json ppl_result_json(const PplResult& r) {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j;
  j["no_memory"] = r.no_memory;
  j["tokens"] = r.tokens;
  j["targets"] = r.overall.count;
  j["nll"] = num(r.overall.mean_nll());
  j["ppl"] = num(r.overall.ppl());
  j["seconds"] = r.seconds;
  j["tokens_per_s"] = r.seconds > 0 ? static_cast<double>(r.tokens) / r.seconds : 0.0;
  j["buckets"] = nlohmann::json::array();
  for (const auto& b : r.buckets) {
    j["buckets"].push_back({{"range", b.label()},
                            {"begin", b.begin},
                            {"end", b.end < 0 ? nlohmann::json(nullptr) : nlohmann::json(b.end)},
                            {"targets", b.count},
                            {"nll", num(b.mean_nll())},
                            {"ppl", num(b.ppl())}});
  }
  return j;
}

PplResult merge_ppl_results(const std::vector<PplResult>& parts) {
  if (parts.empty()) throw Error("merge_ppl_results: no results to merge");
  PplResult m = parts.front();
  for (size_t i = 1; i < parts.size(); ++i) {
    const PplResult& p = parts[i];
    if (p.no_memory != m.no_memory || p.buckets.size() != m.buckets.size())
      throw Error("merge_ppl_results: the results differ in --no-memory or in their buckets");
    for (size_t b = 0; b < m.buckets.size(); ++b) {
      if (p.buckets[b].begin != m.buckets[b].begin || p.buckets[b].end != m.buckets[b].end)
        throw Error("merge_ppl_results: the results differ in their buckets");
      m.buckets[b].nll_sum += p.buckets[b].nll_sum;
      m.buckets[b].count += p.buckets[b].count;
    }
    m.overall.nll_sum += p.overall.nll_sum;
    m.overall.count += p.overall.count;
    m.tokens += p.tokens;
    m.seconds += p.seconds;
  }
  return m;
}

nlohmann::json ppl_sums_json(const PplResult& r) {
  nlohmann::json buckets = nlohmann::json::array();
  for (const PplBucket& b : r.buckets) buckets.push_back({b.begin, b.end, b.nll_sum, b.count});
  return {{"no_memory", r.no_memory}, {"tokens", r.tokens},  {"seconds", r.seconds},
          {"nll_sum", r.overall.nll_sum}, {"targets", r.overall.count}, {"buckets", buckets}};
}

PplResult ppl_result_from_sums(const nlohmann::json& j) {
  PplResult r;
  r.no_memory = j.at("no_memory").get<bool>();
  r.tokens = j.at("tokens").get<int64_t>();
  r.seconds = j.at("seconds").get<double>();
  r.overall.nll_sum = j.at("nll_sum").get<double>();
  r.overall.count = j.at("targets").get<int64_t>();
  for (const auto& b : j.at("buckets")) {
    PplBucket x;
    x.begin = b.at(0).get<int64_t>();
    x.end = b.at(1).get<int64_t>();
    x.nll_sum = b.at(2).get<double>();
    x.count = b.at(3).get<int64_t>();
    r.buckets.push_back(x);
  }
  return r;
}

}  // namespace infini
