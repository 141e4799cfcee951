"""The data: ``dataset`` (``PtychoDataset``, what every stage takes), ``scan_files`` (the reference's
``.npz`` format read, checked and written) and ``measured`` (scan files as training and test datasets,
in model units). The simulator that makes datasets is ``ptycho_torch.simulation``."""

from .dataset import PtychoDataset
from .measured import DataFiles, dataset_from_scan, datasets_from_files, intensity_scale
from .scan_files import DataFileError, ScanFile, read_scan_file, write_object_file, write_scan_file

__all__ = ["DataFileError", "DataFiles", "PtychoDataset", "ScanFile", "dataset_from_scan", "datasets_from_files",
           "intensity_scale", "read_scan_file", "write_object_file", "write_scan_file"]
