using MLExtensions.Core;
using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>
/// An image classifier teacher that scores the augmented images the student just saw, so the soft targets match them
/// (a cropped-away detail should not be "known" to the student through the teacher's view of the original).
/// </summary>
internal sealed class AugmentedImageTeacher : IOnlineTeacher
{
    private readonly ImageClassifierNetwork _teacher;
    private readonly TeacherBinding _binding;

    public AugmentedImageTeacher(ImageClassifierNetwork teacher, TeacherBinding binding, Device device)
    {
        _teacher = teacher;
        _binding = binding;
        _teacher.to(device);
        _teacher.eval();
    }

    public Batch BeforeStudent(Batch batch) => batch;

    public TeacherGuidance Teach(ITrainingTask student, Batch batch)
    {
        var input = (student as ImageClassificationTask)?.LastNetworkInput
            ?? throw new InvalidOperationException("TeacherSeesAugmentedImages needs an image classifier student.");
        using var noGrad = torch.no_grad();
        var logits = _binding.ToStudentOrder(_teacher.call(input));
        return new TeacherGuidance(logits, torch.zeros(1, device: logits.device).squeeze());
    }

    public IReadOnlyList<TorchSharp.Modules.Parameter> TrainableParameters() => Array.Empty<TorchSharp.Modules.Parameter>();

    public IEnumerable<nn.Module> Networks => new nn.Module[] { _teacher };

    public void Dispose() => _teacher.to(CPU);
}
