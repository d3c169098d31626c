from probes.machine import probe_machine, read_cgroup_cpu_quota, read_cgroup_memory_limit


def test_cgroup_v2_quota_is_read_in_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert read_cgroup_cpu_quota(tmp_path) == 1.5


def test_cgroup_v2_unlimited_quota_is_none(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert read_cgroup_cpu_quota(tmp_path) is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert read_cgroup_cpu_quota(tmp_path) == 0.5


def test_memory_limit_v2(tmp_path):
    (tmp_path / "memory.max").write_text(str(2 * 2**30))
    assert read_cgroup_memory_limit(tmp_path) == 2 * 2**30
    (tmp_path / "memory.max").write_text("max")
    assert read_cgroup_memory_limit(tmp_path) is None


def test_usable_cores_honour_a_quota_below_the_affinity(tmp_path):
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    (tmp_path / "memory.max").write_text(str(3 * 2**30))
    machine = probe_machine(tmp_path)
    assert machine.usable_cores == 1
    assert machine.memory_limit_bytes == 3 * 2**30
    assert machine.memory_usable_bytes <= 3 * 2**30


def test_probe_without_cgroup_files_uses_the_affinity(tmp_path):
    machine = probe_machine(tmp_path)
    assert machine.cgroup_cpu_quota is None
    assert machine.usable_cores == machine.affinity_cores >= 1
    assert machine.start_method in ("fork", "spawn", "forkserver")
