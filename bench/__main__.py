"""`make bench`: every benchmark, one after the other; each writes its figures to bench/results/.

The GPU benchmark measures only where a GPU serves; elsewhere it writes that none was found (a probe).
"""

from bench import batch_bench, batch_cost, gpu_bench, ingest_bench, monitor_bench, score_bench


def main() -> None:
    ingest_bench.main()
    score_bench.main()
    monitor_bench.main()
    batch_bench.main()
    batch_cost.main()
    gpu_bench.main([])


if __name__ == "__main__":
    main()
