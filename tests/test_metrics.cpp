// tests/test_metrics.cpp — BLEU and chrF on hand-worked cases and on published sacrebleu values.
#include <catch2/catch.hpp>

#include <cmath>

#include <attnlab/data/metrics.h>

using namespace attn;

TEST_CASE("13a tokenizer: punctuation, digits, dashes and entities as mteval-v13a does") {
  REQUIRE(tokenize_13a("Hello, world!") == "Hello , world !");
  REQUIRE(tokenize_13a("It costs 3.14 or 1,000 dollars.") == "It costs 3.14 or 1,000 dollars .");
  REQUIRE(tokenize_13a("pages 5-6 and well-known") == "pages 5 - 6 and well-known");
  REQUIRE(tokenize_13a("a &amp; b &lt;c&gt; &quot;q&quot;") == "a & b < c > \" q \"");
  REQUIRE(tokenize_13a("(see: x/y) [1]") == "( see : x / y ) [ 1 ]");
  REQUIRE(tokenize_13a("end.") == "end .");
  REQUIRE(tokenize_13a(".5 and 5.") == ". 5 and 5 .");
  REQUIRE(tokenize_13a("Grüße, Jürgen.") == "Grüße , Jürgen .");
  REQUIRE(tokenize_13a("  many   spaces\there ") == "many spaces here");
  REQUIRE(tokenize_13a("a<skipped>b") == "ab");
  REQUIRE(tokenize_13a("%s wasn't found") == "% s wasn't found");  // ' (0x27) is outside the class
}

TEST_CASE("BLEU, worked by hand: clipped n-gram precisions 5/6, 3/5, 2/4, 1/3, no brevity penalty") {
  BleuResult b = corpus_bleu({"the cat sat on the mat"}, {"the cat sat on a mat"});
  REQUIRE(b.correct[0] == 5);
  REQUIRE(b.total[0] == 6);
  REQUIRE(b.correct[3] == 1);
  REQUIRE(b.bp == 1.0);
  REQUIRE(b.score == Approx(100.0 * std::pow(1.0 / 12.0, 0.25)).epsilon(1e-9));  // 53.7285
  REQUIRE(corpus_bleu({"same words here ok"}, {"same words here ok"}).score == Approx(100.0));
}

TEST_CASE("BLEU exp smoothing: the k-th zero-match order gets 100 / (2^k total)") {
  // 1-grams 4/5, 2-grams 2/4, 3-grams 0/3 -> 100/(2*3), 4-grams 0/2 -> 100/(4*2)
  BleuResult b = corpus_bleu({"a b c d e"}, {"a b x d e"});
  REQUIRE(b.precisions[2] == Approx(100.0 / 6));
  REQUIRE(b.precisions[3] == Approx(12.5));
  REQUIRE(b.score == Approx(std::pow(80.0 * 50.0 * (100.0 / 6) * 12.5, 0.25)).epsilon(1e-9));
}

TEST_CASE("BLEU brevity penalty and corpus-level sums") {
  // hyp 4 tokens vs ref 6: BP = exp(1 - 6/4)
  BleuResult b = corpus_bleu({"the cat sat on"}, {"the cat sat on the mat"});
  REQUIRE(b.bp == Approx(std::exp(1.0 - 6.0 / 4.0)));
  REQUIRE(b.score == Approx(100.0 * std::exp(1.0 - 1.5)).epsilon(1e-9));  // all precisions 1
  // statistics are summed over sentences before the geometric mean
  BleuResult c = corpus_bleu({"a b c d", "x y"}, {"a b c d", "x z"});
  REQUIRE(c.total[0] == 6);
  REQUIRE(c.correct[0] == 5);
  REQUIRE(c.total[3] == 1);
  // too short for 4-grams anywhere: BLEU is 0, as in sacrebleu
  REQUIRE(corpus_bleu({"a b"}, {"a b"}).score == 0.0);
  REQUIRE_THROWS_WITH(corpus_bleu({"a"}, {}), Catch::Contains("1 hypotheses but 0 references"));
}

TEST_CASE("chrF matches sacrebleu's published values") {
  // Values printed by sacrebleu's CHRF (char order 6, beta 2) in the HuggingFace metric card.
  REQUIRE(corpus_chrf({"The relationship between Obama and Netanyahu is not exactly friendly."},
                      {"The ties between Obama and Netanyahu are not particularly friendly."}) ==
          Approx(61.576379378113785).epsilon(1e-9));
  REQUIRE(corpus_chrf({"The relationship between cats and dogs is not exactly friendly.",
                       "a good bookshop is just a genteel black hole that knows how to read."},
                      {"The relationship between dogs and cats is not exactly friendly.",
                       "A good bookshop is just a genteel Black Hole that knows how to read."}) ==
          Approx(84.64214891738334).epsilon(1e-9));
}

TEST_CASE("chrF worked by hand, whitespace ignored, Unicode counted by code point") {
  // "ab" vs "ab": 1-grams 2/2, 2-grams 1/1; orders 3..6 have no n-grams and are skipped -> 100
  REQUIRE(corpus_chrf({"a b"}, {"ab"}) == Approx(100.0));
  // "äb" vs "äc": unigrams 1/2 match (P = R = 0.5), bigrams 0/1 -> avg P = R = 0.25 -> F = 0.25
  REQUIRE(corpus_chrf({"äb"}, {"äc"}) == Approx(25.0));
  REQUIRE(corpus_chrf({""}, {"abc"}) == 0.0);
}
