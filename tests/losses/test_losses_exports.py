import darec.functional as DF
import darec.losses as DL


def test_flat_exports_resolve():
    for package in (DF, DL):
        assert package.__all__ == sorted(package.__all__)
        for name in package.__all__:
            assert getattr(package, name).__doc__


def test_every_loss_module_documents_a_reference():
    for name in DL.__all__:
        doc = getattr(DL, name).__doc__
        assert "arXiv:" in doc and "Example:" in doc, name
