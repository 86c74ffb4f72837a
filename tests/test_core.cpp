// tests/test_core.cpp — Tensor, kernels (BLAS against the plain-loop references), safetensors, file IO.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/fileio.h"
#include "core/kernels.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "core/threads.h"

using namespace attn;
namespace fs = std::filesystem;

static Tensor random_tensor(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); i++) t[i] = rng.normal();
  return t;
}

static fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("attnlab-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST_CASE("tensor storage is shared by reshape and copied by clone") {
  Tensor a = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = a.reshape({3, 2});
  b.at({2, 1}) = 60;
  REQUIRE(a.at({1, 2}) == 60);
  REQUIRE(b.same_storage(a));
  Tensor c = a.clone();
  c[0] = -1;
  REQUIRE(a[0] == 1);
  REQUIRE(a.reshape({-1}).shape() == Shape{6});
  REQUIRE_THROWS_WITH(a.reshape({4, 2}), Catch::Contains("cannot reshape (2, 3) to (4, 2)"));
  REQUIRE_THROWS(Tensor({1, 1, 1, 1, 1}));
  REQUIRE_THROWS(Tensor::from({2}, {1, 2, 3}));
}

TEST_CASE("tensor prints like numpy, eliding the middle of long dims") {
  Tensor t = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  REQUIRE(fmt::format("{}", t) == "tensor (2, 3)\n[[1, 2, 3],\n [4, 5, 6]]");
  Tensor big({10});
  for (int i = 0; i < 10; i++) big[i] = float(i);
  REQUIRE(fmt::format("{}", big) == "tensor (10,)\n[0, 1, 2, ..., 7, 8, 9]");
}

TEST_CASE("sgemm matches the plain-loop reference for every transpose, alpha and beta") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int M = 7, N = 5, K = 9;
      Tensor a = random_tensor(ta ? Shape{K, M} : Shape{M, K}, 1), b = random_tensor(tb ? Shape{N, K} : Shape{K, N}, 2);
      Tensor c1 = random_tensor({M, N}, 3), c2 = c1.clone();
      matmul_forward(c1.data(), a.data(), b.data(), M, N, K, ta, tb, 0.7f, 0.3f);
      matmul_reference(c2.data(), a.data(), b.data(), M, N, K, ta, tb, 0.7f, 0.3f);
      INFO("trans_a " << ta << " trans_b " << tb);
      REQUIRE(max_abs_diff(c1, c2) < 1e-5f);
    }
}

TEST_CASE("ssyrk gram product equals the general product a aᵀ, both triangles") {
  const int N = 6, K = 4;
  Tensor a = random_tensor({N, K}, 4);
  Tensor g({N, N}), ref({N, N});
  gram_forward(g.data(), a.data(), N, K, 0.5f);
  matmul_reference(ref.data(), a.data(), a.data(), N, N, K, false, true, 0.5f);
  REQUIRE(max_abs_diff(g, ref) < 1e-5f);
}

TEST_CASE("masked softmax: rows sum to one, masked entries are zero, a fully masked row is zero") {
  const float ninf = -std::numeric_limits<float>::infinity();
  Tensor x = random_tensor({1, 1, 3, 3}, 5), mask({1, 3, 3}), p({1, 1, 3, 3});
  mask.at({0, 0, 2}) = ninf;
  for (int j = 0; j < 3; j++) mask.at({0, 2, j}) = ninf;
  softmax_forward(p.data(), x.data(), mask.data(), 1, 1, 3, 3, 0.5f);
  REQUIRE(p.at({0, 0, 0, 0}) + p.at({0, 0, 0, 1}) == Approx(1.f));
  REQUIRE(p.at({0, 0, 0, 2}) == 0.f);
  REQUIRE(p.at({0, 0, 1, 0}) + p.at({0, 0, 1, 1}) + p.at({0, 0, 1, 2}) == Approx(1.f));
  for (int j = 0; j < 3; j++) REQUIRE(p.at({0, 0, 2, j}) == 0.f);
  // value check on row 1: softmax(0.5 x)
  double z = 0;
  for (int j = 0; j < 3; j++) z += std::exp(0.5 * x.at({0, 0, 1, j}));
  REQUIRE(p.at({0, 0, 1, 1}) == Approx(std::exp(0.5 * x.at({0, 0, 1, 1})) / z).epsilon(1e-5));
}

TEST_CASE("layer norm output has zero mean and unit variance before the affine part") {
  const int R = 4, C = 16;
  Tensor x = random_tensor({R, C}, 6), y({R, C}), mean({R}), rstd({R});
  Tensor w = Tensor::full({C}, 1.f), b({C});
  layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), R, C);
  for (int r = 0; r < R; r++) {
    double m = 0, v = 0;
    for (int c = 0; c < C; c++) m += y.at({r, c});
    m /= C;
    for (int c = 0; c < C; c++) v += (y.at({r, c}) - m) * (y.at({r, c}) - m);
    REQUIRE(std::fabs(m) < 1e-5);
    REQUIRE(v / C == Approx(1.0).epsilon(1e-3));
  }
}

TEST_CASE("cross-entropy with smoothing and an ignored row equals the formula") {
  Tensor logits = Tensor::from({2, 3}, {1.f, 2.f, 3.f, 0.f, 0.f, 0.f});
  Tensor probs({2, 3});
  int32_t targets[2] = {2, 0};
  int64_t count = 0;
  double total = cross_entropy_forward(probs.data(), &count, logits.data(), targets, 2, 3, 0.1f, /*ignore=*/0);
  REQUIRE(count == 1);
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double expect = 0.9 * (lse - 3.0) + 0.1 * (lse - 2.0);  // mean logit is 2
  REQUIRE(total == Approx(expect).epsilon(1e-6));
}

TEST_CASE("threads setting reaches both BLAS and the framework") {
  set_threads(1);
  REQUIRE(num_threads() == 1);
  set_threads(2);
  REQUIRE(num_threads() == 2);
}

TEST_CASE("safetensors round-trips names, shapes, values and metadata") {
  fs::path d = temp_dir("st");
  Tensor a = random_tensor({2, 3}, 7), b = random_tensor({5}, 8);
  save_safetensors((d / "x.safetensors").string(), {{"enc.0.wq.weight", a}, {"bias", b}}, {{"step", "12"}});
  SafetensorsFile f = load_safetensors((d / "x.safetensors").string());
  REQUIRE(f.tensors.size() == 2);
  REQUIRE(f.metadata.at("step") == "12");
  REQUIRE(max_abs_diff(*f.find("enc.0.wq.weight"), a) == 0.f);
  REQUIRE(max_abs_diff(*f.find("bias"), b) == 0.f);
  // header starts at byte 8 and data is 8-byte aligned, as the format's writer does
  std::string bytes = read_file((d / "x.safetensors").string());
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  REQUIRE((8 + n) % 8 == 0);
  REQUIRE(bytes[8] == '{');
  fs::remove_all(d);
}

static std::string with_header(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; i++) out[i] = char((n >> (8 * i)) & 0xff);
  return out + json + data;
}

TEST_CASE("safetensors reader rejects every malformed file with a message naming it") {
  const std::string data8(8, '\0');
  auto bad = [](const std::string& bytes, const std::string& why) {
    INFO(why);
    REQUIRE_THROWS_WITH(decode_safetensors(bytes, "ckpt.safetensors"),
                        Catch::StartsWith("ckpt.safetensors: not a valid safetensors file") && Catch::Contains(why));
  };
  bad("abc", "shorter than the 8-byte header");
  bad(with_header("{", ""), "not well-formed JSON");
  bad(with_header("[1]", ""), "not a JSON object");
  std::string huge(8, '\xff');
  bad(huge + "{}", "exceeds");
  bad(std::string("\x10\0\0\0\0\0\0\0", 8) + "{}", "runs past the end");
  bad(with_header(R"({"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", data8), "unknown dtype");
  bad(with_header(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", data8), "F32 only");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8), "needs 12");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8), "gap or overlap");
  bad(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  data8),
      "gap or overlap");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data8), "truncated or trailing");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"), "truncated or trailing");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8), "negative");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[2]}})", data8), "lacks");
  // a valid file, truncated at every length, is always rejected (never read as garbage)
  std::string good = encode_safetensors({{"w", random_tensor({3, 2}, 9)}});
  for (size_t len = 0; len < good.size(); len++) REQUIRE_THROWS(decode_safetensors(good.substr(0, len), "t"));
}

TEST_CASE("atomic write: a failed (disk-full) write leaves the previous file intact and no temp file") {
  fs::path d = temp_dir("atomic");
  const std::string path = (d / "model.safetensors").string();
  write_file_atomic(path, "old complete contents");
  set_write_fault_after(4);
  REQUIRE_THROWS_WITH(write_file_atomic(path, std::string(100, 'x')), Catch::Contains("No space left on device"));
  set_write_fault_after(-1);
  REQUIRE(read_file(path) == "old complete contents");
  int files = 0;
  for (auto& e : fs::directory_iterator(d)) files += e.is_regular_file();
  REQUIRE(files == 1);
  REQUIRE_THROWS_WITH(write_file_atomic((d / "no/such/dir/x").string(), "x"), Catch::Contains("no/such/dir/x: cannot write"));
  REQUIRE_THROWS_WITH(read_file((d / "missing").string()), Catch::Contains("missing: cannot open"));
  fs::remove_all(d);
}
