from pathlib import Path

from iaa_desktop.core.workspace_paths import WORKSPACES_ENV, runs_dir, workspace_dir_for


def test_workspace_is_outside_the_dataset_and_distinct_per_root(tmp_path, monkeypatch):
    monkeypatch.setenv(WORKSPACES_ENV, str(tmp_path / "ws"))
    a = tmp_path / "one" / "data"
    b = tmp_path / "two" / "data"
    wa, wb = workspace_dir_for(a), workspace_dir_for(b)
    assert wa != wb
    assert wa.parent == tmp_path / "ws" and wa.name.startswith("data-")
    assert not str(wa).startswith(str(a))
    assert workspace_dir_for(a) == wa  # stable
    assert runs_dir(wa) == wa / "runs"


def test_odd_folder_names_become_safe(tmp_path, monkeypatch):
    monkeypatch.setenv(WORKSPACES_ENV, str(tmp_path / "ws"))
    w = workspace_dir_for(tmp_path / "my dérm data!")
    assert " " not in w.name and "!" not in w.name
    assert Path(w).parent == tmp_path / "ws"
