from pathlib import Path

from setuptools import setup

setup(
    name="nas-tensorboard",
    version="0.2.0",
    description="Neural Activation Sparsity (NAS) logging for PyTorch and a TensorBoard plugin to view it",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    # training/ (the paper's experiments, `python -m training` in a checkout) is not installed: a top-level
    # package of that name would shadow a user's own `training` module.
    packages=["nas_logger", "nas_logger.integrations", "nas_tb_plugin", "nas_tb_plugin.frontend"],
    # The TensorBoard plugin serves the frontend's files from nas_tb_plugin/frontend once installed.
    package_dir={"nas_tb_plugin.frontend": "frontend"},
    package_data={"nas_logger": ["nas_fused.c", "crc32c.c"], "nas_tb_plugin.frontend": ["*.js", "*.mjs", "*.css", "*.svg", "*.png", "*/*.js", "*/*.css"]},
    entry_points={
        "tensorboard_plugins": ["nas = nas_tb_plugin.plugin:NASLoader"],
    },
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "tensorboard>=2.14",
        "numpy>=1.23",
        "protobuf>=3.20",
        "werkzeug>=2.0",
        "tqdm>=4.60",
        "google-re2>=1.1",
    ],
    extras_require={
        "test": ["pytest>=7", "scipy>=1.9", "scikit-learn>=1.2", "playwright>=1.40", "hypothesis>=6",
                 "codespell>=2.2", "mdlinkcheck>=0.2", "setuptools>=70.1"],
        "lightning": ["lightning>=2.0"],
        "huggingface": ["transformers>=4.40", "accelerate>=0.26"],
    },
)
