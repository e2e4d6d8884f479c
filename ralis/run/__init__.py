"""A run's directory and record: ``run.sqlite`` (:mod:`~ralis.run.store`), opening, locking and
resuming a run directory (:mod:`~ralis.run.rundir`), the names of its files
(:mod:`~ralis.run.names`), the input files a run reads (:mod:`~ralis.run.inputs`) and the set-up
every run shares: seeds per step, threads, device (:mod:`~ralis.run.session`)."""
