// Uses the translation toolkit as a library: BLEU and chrF (sacreBLEU-exact) of a tiny corpus.
// A corpus scored against itself gets 100; a different one less. Exits 1 otherwise.
#include <cmath>
#include <cstdio>

#include "attend/metrics.h"

int main() {
  namespace metrics = attend::metrics;
  const std::vector<std::string> ref = {"the cat sat on a mat", "the dog barked at the moon"};
  const std::vector<std::string> hyp = {"the cat sat on the mat", "a dog barked at the moon"};
  const double bleu_same = metrics::CorpusBleu(ref, {ref}).score;
  const double chrf_same = metrics::CorpusChrf(ref, {ref}).score;
  const double bleu = metrics::CorpusBleu(hyp, {ref}).score;
  const double chrf = metrics::CorpusChrf(hyp, {ref}).score;
  std::printf("consumer_mt: against itself BLEU %.2f chrF %.2f; the other BLEU %.2f chrF %.2f\n",
              bleu_same, chrf_same, bleu, chrf);
  // 100 up to rounding: the scores come out of exp and log.
  const bool ok = std::fabs(bleu_same - 100.0) < 1e-9 && std::fabs(chrf_same - 100.0) < 1e-9 &&
                  bleu > 0 && bleu < 100 && chrf > 0 && chrf < 100;
  return ok ? 0 : 1;
}
