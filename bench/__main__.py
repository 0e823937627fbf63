"""`make bench`: every benchmark, one after the other; each writes its figures to bench/results/."""

from bench import batch_bench, batch_cost, ingest_bench, monitor_bench, score_bench


def main() -> None:
    ingest_bench.main()
    score_bench.main()
    monitor_bench.main()
    batch_bench.main()
    batch_cost.main()


if __name__ == "__main__":
    main()
