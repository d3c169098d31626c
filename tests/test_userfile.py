"""The user-file convention, tested on files that need no Keras."""

import textwrap

import pytest

from tuner.engines import registry
from tuner.errors import TuneLoaderError
from tuner.userfile import find_dataset, find_model, import_user_file


class Base:
    """Stands in for keras.utils.PyDataset in these files."""


def write(tmp_path, body, name="my_gen.py"):
    path = tmp_path / name
    path.write_text("from tests.test_userfile import Base\n" + textwrap.dedent(body))
    return import_user_file(path)


def find(module, chosen=None):
    return find_dataset(
        module, chosen, is_dataset=lambda o: isinstance(o, Base), is_dataset_class=lambda c: issubclass(c, Base)
    )


def test_make_dataset_wins_over_the_class_it_builds(tmp_path):
    module = write(tmp_path, """
        class Images(Base):
            def __init__(self, size): self.size = size
        def make_dataset(): return Images(3)
    """)
    found = find(module)
    assert found.name == "make_dataset" and found.build().size == 3


def test_a_class_without_required_arguments_is_found(tmp_path):
    module = write(tmp_path, "class Images(Base):\n    pass\n")
    found = find(module)
    assert found.name == "Images" and isinstance(found.build(), Base)


def test_imported_classes_are_not_candidates(tmp_path):
    with pytest.raises(TuneLoaderError, match="No dataset found in my_gen.py"):
        find(write(tmp_path, "x = 1\n"))


def test_no_dataset_found_names_every_kind_of_dataset_an_engine_takes(tmp_path):
    with pytest.raises(TuneLoaderError) as raised:
        find(write(tmp_path, "x = 1\n"))
    kinds = [kind for entry in registry.ENGINES for kind in entry.takes]
    assert len(kinds) >= len(registry.ENGINES) and all(kind in str(raised.value) for kind in kinds)
    assert "make_dataloader(**knobs)" in str(raised.value)


def test_classes_needing_arguments_are_named_in_the_error(tmp_path):
    module = write(tmp_path, "class Images(Base):\n    def __init__(self, folder): pass\n")
    with pytest.raises(TuneLoaderError, match="Found classes that need arguments: Images"):
        find(module)


def test_two_instances_without_a_choice_name_both_and_the_flag(tmp_path):
    module = write(tmp_path, "train = Base()\nvalid = Base()\n")
    with pytest.raises(TuneLoaderError, match=r"several dataset instances in my_gen.py: train, valid.*--dataset NAME"):
        find(module)
    assert find(module, "valid").name == "valid"


def test_unknown_choice_lists_what_the_file_defines(tmp_path):
    module = write(tmp_path, "train = Base()\n")
    with pytest.raises(TuneLoaderError, match=r"no attribute 'test' \(it defines: Base, train\)"):
        find(module, "test")


def test_import_errors_point_at_the_line(tmp_path):
    with pytest.raises(TuneLoaderError, match="failed at line 3 with ZeroDivisionError"):
        write(tmp_path, "x = 1\ny = 1 / 0\n")


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(TuneLoaderError, match="No such file"):
        import_user_file(tmp_path / "nope.py")


def test_model_factory_is_optional(tmp_path):
    module = write(tmp_path, "def make_model(): return 'model'\n")
    assert find_model(module, None, is_model=lambda o: False).build() == "model"
    assert find_model(write(tmp_path, "x = 1\n", "other.py"), None, is_model=lambda o: False) is None


def test_a_file_is_imported_under_its_own_name_so_spawned_workers_can_import_it_again(tmp_path):
    module = write(tmp_path, "class Shards(Base):\n    pass\n", name="spawnable_shards.py")
    assert module.__name__ == "spawnable_shards" and module.Shards.__module__ == "spawnable_shards"


def test_a_file_whose_name_is_taken_gets_a_private_name(tmp_path):
    module = write(tmp_path, "class Shards(Base):\n    pass\n", name="json.py")  # json is imported already
    assert module.__name__ == "tune_loader_user_json"


def test_a_module_level_make_dataloader_is_taken_and_called_with_its_defaults(tmp_path):
    module = write(tmp_path, """
        def make_dataloader(num_workers=0, prefetch_factor=None, persistent_workers=False):
            return ("a DataLoader", num_workers)
    """)
    found = find(module)
    assert found.name == "make_dataloader" and found.build() == ("a DataLoader", 0)


def test_the_no_dataset_error_names_every_kind_taken(tmp_path):
    with pytest.raises(TuneLoaderError) as error:
        find(write(tmp_path, "x = 1\n"))
    for kind in ("make_dataset()", "make_dataloader(**knobs)", "keras.utils.PyDataset", "tf_keras.utils.Sequence",
                 "torch DataLoader", "generator", "--dataset NAME"):
        assert kind in str(error.value)
