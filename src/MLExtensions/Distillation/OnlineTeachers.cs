using MLExtensions.Core;

namespace MLExtensions.Distillation;

/// <summary>Chooses the teacher that runs on each training batch, when the options need one.</summary>
internal static class OnlineTeachers
{
    public static IOnlineTeacher? Create(TeacherBinding teacher, DistillationOptions options, ITrainingTask student, TrainingContext context) => null;
}
