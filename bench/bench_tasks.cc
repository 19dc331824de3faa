// Training steps of the catalogue's systems (docs/tasks.md), one file per system in bench/tasks/,
// run beside their PyTorch mirrors by bench/tasks_compare.py. Each benchmark is named
// BM_TaskStep_<System>/<system>_<variant> and reports items/s.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
